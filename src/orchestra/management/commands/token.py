from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from orchestra.management.commands._base import OrchestraCommand
from orchestra.models import PersonalToken
from orchestra.services.access import token_create, token_revoke


class Command(OrchestraCommand):
    help = (
        "Personal API tokens for the worker API: `token create USERNAME [--name N]`, `token list [USERNAME]`,"
        " `token revoke ID`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        create = actions.add_parser("create", help="create a token for a user; prints it once")
        create.add_argument("username")
        create.add_argument("--name", default="", help="what the token is for")
        listing = actions.add_parser("list", help="list tokens (never the tokens themselves)")
        listing.add_argument("username", nargs="?")
        revoke = actions.add_parser("revoke", help="refuse the token from now on")
        revoke.add_argument("token_id", type=int, metavar="ID")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            token, raw = token_create(user=options["username"], name=options["name"], actor="cli")
            self.stdout.write(f"token {token.pk} for {options['username']}: {raw}")
            self.stdout.write("Send it as 'Authorization: Token <token>'. It is shown only now.")
        elif action == "list":
            tokens = PersonalToken.objects.select_related("user")
            if options["username"]:
                tokens = tokens.filter(user__username=options["username"])
            for t in tokens:
                state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
                self.stdout.write(f"{t.pk:>5}  {t.user.get_username():<20} {t.prefix}…  {t.name:<30} {state}")
        else:
            token = token_revoke(token_id=options["token_id"], actor="cli")
            self.stdout.write(f"revoked token {token.pk} ({token.prefix}…) of {token.user.get_username()}")
