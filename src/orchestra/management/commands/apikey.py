from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from orchestra.management.commands._base import OrchestraCommand
from orchestra.models import ApiKey
from orchestra.services.access import apikey_create, apikey_revoke


class Command(OrchestraCommand):
    help = (
        "Client API keys: `apikey create NAME` prints a key id and its secret (shown once), `apikey list`,"
        " `apikey revoke KEY_ID_OR_NAME`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        create = actions.add_parser("create", help="create a key; prints its id and secret once")
        create.add_argument("name", help="who or what will use the key, e.g. billing-service")
        actions.add_parser("list", help="list keys (never their secrets)")
        revoke = actions.add_parser("revoke", help="refuse the key's requests from now on")
        revoke.add_argument("key", metavar="KEY_ID_OR_NAME")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            issued = apikey_create(name=options["name"], actor="cli")
            self.stdout.write(f"key id:  {issued.key.key_id}\nsecret:  {issued.secret}")
            self.stdout.write("Store the secret now: it is not stored anywhere and cannot be shown again.")
        elif action == "list":
            keys = list(ApiKey.objects.all())
            if not keys:
                self.stdout.write("no API keys; create one with `orchestra apikey create NAME`")
            for key in keys:
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
                self.stdout.write(f"{key.key_id}  {key.name:<30} created {key.created_at:%Y-%m-%d %H:%M}  {state}")
        else:
            key = apikey_revoke(key=options["key"], actor="cli")
            self.stdout.write(f"revoked {key.key_id} ({key.name})")
