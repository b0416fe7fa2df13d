"""References to user functions and the policies that name them: B12's forms, checking, importing.

A reference is `{"path": "package.module.function", "kwargs": {...}}` or B12's `{"module", "name"}`.
Review, assignment and creation policies are references too, where a bare name means a built-in.
`RefChecker` checks them on raw definition data, reporting each problem at the path the author wrote;
`_validation` builds the checks for whole steps, versions and workflows on top of it.
"""

from __future__ import annotations

import difflib
import importlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from orchestra.engine.errors import Problem

CALLABLE_KEYS = ("path", "kwargs", "module", "name")
REVIEW_KEYS = ("policy", "rate", "max_reviews", "kwargs")
ROLES = ("entry_level", "reviewer")

REVIEW_BUILTINS = ("no_review", "sampled_review")
# Each built-in assignment policy with the keyword arguments it takes (and requires).
ASSIGNMENT_BUILTINS: dict[str, tuple[str, ...]] = {
    "anyone_certified": (),
    "specified_worker": ("username",),
    "previously_completed_steps": ("related_steps",),
}
CREATION_BUILTINS = ("always_create",)
# Where B12 (and our own engine) keep the built-ins; definitions name them either way.
ASSIGNMENT_PREFIXES = ("orchestra.assignment_policies.", "orchestra.engine.policies.assignment.")
CREATION_PREFIXES = ("orchestra.creation_policies.", "orchestra.engine.policies.creation.")

REF_EXAMPLE = '{"path": "package.module.function"}'
_REVIEW_HINT = "use 'no_review', 'sampled_review' or a dotted path to your own policy function"


# --- small helpers shared with definitions.py -------------------------------------------------------


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a candidate is close to `word`, else ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(value: object) -> str:
    """A value as a JSON/YAML author thinks of it: `a string ('crawl')`, `a list`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({text!r})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def strings(value: object, path: str) -> list[tuple[str, str]]:
    """The string items of a list with their paths; pydantic reports anything that is not a string."""
    if not isinstance(value, list):
        return []
    return [(join(path, i), item) for i, item in enumerate(value) if isinstance(item, str)]


def normalize_policy_path(path: str, builtins: Collection[str], prefixes: Sequence[str]) -> str:
    """B12's `orchestra.assignment_policies.specified_worker` and friends become the bare built-in name."""
    for prefix in prefixes:
        if path.startswith(prefix) and path[len(prefix) :] in builtins:
            return path[len(prefix) :]
    return path


def join_module_name(data: dict[str, Any]) -> dict[str, Any]:
    """B12's `{"module": "a.b", "name": "c"}` as `{"path": "a.b.c"}`; anything else unchanged."""
    module, name = data.get("module"), data.get("name")
    if "path" in data or not isinstance(module, str) or not isinstance(name, str):
        return data
    rest = {k: v for k, v in data.items() if k not in ("module", "name")}
    return {"path": f"{module}.{name}", **rest}


_RESOLVED: dict[str, Callable[..., Any]] = {}


def resolve_dotted(path: str) -> Callable[..., Any]:
    """Import `package.module.attr` (attributes may nest) and return it. Results are cached.

    Raises ImportError naming the path and the reason when it cannot be imported or is not callable
    (so callers handle one exception for "this reference is unusable").
    """
    cached = _RESOLVED.get(path)
    if cached is not None:
        return cached
    obj = import_dotted(path)
    if not callable(obj):
        raise ImportError(f"'{path}' is {describe(obj)}, not a function")
    function: Callable[..., Any] = obj
    _RESOLVED[path] = function
    return function


def import_dotted(path: str) -> Any:
    """The object at `package.module.attr` (attributes may nest); ImportError names the path and why."""
    parts = path.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise ImportError(f"cannot import '{path}': not a dotted path like 'package.module.function'")
    missing: str | None = None
    obj: Any = None
    # The longest importable prefix is the module; the rest are attributes (B12 only ever uses one).
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                missing = missing or str(exc)
                continue
            raise ImportError(f"cannot import '{path}': importing '{module_name}' failed: {exc}") from exc
        except Exception as exc:
            raise ImportError(
                f"cannot import '{path}': importing '{module_name}' raised {type(exc).__name__}: {exc}"
            ) from exc
        owner = module_name
        for attr in parts[split:]:
            if not hasattr(obj, attr):
                raise ImportError(f"cannot import '{path}': '{owner}' has no attribute '{attr}'")
            obj = getattr(obj, attr)
            owner = f"{owner}.{attr}"
        break
    else:
        raise ImportError(f"cannot import '{path}': {missing}")
    return obj


class RefChecker:
    """Collects problems; checks references and policies. Subclassed for steps and versions."""

    def __init__(self, *, check_imports: bool) -> None:
        self.check_imports = check_imports
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def known_keys(self, obj: Mapping[str, Any], allowed: Collection[str], path: str) -> dict[str, Any]:
        """A copy of `obj` without its unknown keys, each reported with the closest allowed one."""
        cleaned: dict[str, Any] = {}
        for key, value in obj.items():
            if key in allowed:
                cleaned[key] = value
                continue
            hint = did_you_mean(key, allowed)
            if not hint:
                hint = "; expected one of: " + ", ".join(allowed)
            self.add(join(path, str(key)), f"unknown key{hint}")
        return cleaned

    def is_object(self, data: object, path: str, example: str) -> bool:
        if isinstance(data, dict):
            return True
        self.add(path, f"expected an object like {example}, got {describe(data)}")
        return False

    def kwargs(self, ref: Mapping[str, Any], path: str) -> None:
        if "kwargs" in ref and not isinstance(ref["kwargs"], dict):
            self.add(
                join(path, "kwargs"),
                f"expected an object of keyword arguments, got {describe(ref['kwargs'])}",
            )

    # --- callables and policies ------------------------------------------------------------------

    def callable_ref(
        self,
        raw: object,
        path: str,
        *,
        label: str = "",
        builtins: Collection[str] = (),
        prefixes: Sequence[str] = (),
    ) -> str | None:
        """Check a `{path, kwargs}` or `{module, name}` reference; its normalized path, or None if wrong.

        `label` names the kind of policy whose `builtins` may be given by bare name.
        """
        before = len(self.problems)
        if not self.is_object(raw, path, REF_EXAMPLE):
            return None
        assert isinstance(raw, dict)
        ref = self.known_keys(raw, CALLABLE_KEYS, path)
        dotted: str | None = None
        where = join(path, "path")
        if "path" in ref and ("module" in ref or "name" in ref):
            self.add(path, "give either 'path' or B12's 'module' and 'name', not both")
        elif "module" in ref or "name" in ref:
            where = join(path, "module")
            for key, other in (("module", "name"), ("name", "module")):
                if key not in ref:
                    self.add(join(path, key), f"field required with '{other}' (B12's {{module, name}} form)")
                elif not isinstance(ref[key], str) or not ref[key]:
                    self.add(join(path, key), f"expected a non-empty string, got {describe(ref[key])}")
            if len(self.problems) == before:
                dotted = f"{ref['module']}.{ref['name']}"
        elif "path" not in ref:
            self.add(where, f"field required: a dotted path like {REF_EXAMPLE}")
        elif not isinstance(ref["path"], str) or not ref["path"]:
            self.add(where, f"expected a dotted path like 'package.module.function', got {describe(ref['path'])}")
        else:
            dotted = ref["path"]
        self.kwargs(ref, path)
        if dotted is not None:
            dotted = normalize_policy_path(dotted, builtins, prefixes)
            if dotted not in builtins:
                self.dotted(dotted, where, label=label, builtins=builtins, prefixes=prefixes)
        return dotted if len(self.problems) == before else None

    def dotted(
        self,
        dotted: str,
        where: str,
        *,
        label: str = "",
        builtins: Collection[str] = (),
        prefixes: Sequence[str] = (),
    ) -> None:
        """Check a dotted path to a user function: well formed, and importable when checking imports."""
        use = f"use {', '.join(builtins)} or a dotted path to your own function" if builtins else ""
        b12_name = next((dotted[len(p) :] for p in prefixes if dotted.startswith(p)), None)
        if b12_name is not None:
            hint = did_you_mean(b12_name, builtins)
            self.add(where, f"'{dotted}' is not a built-in {label}{hint}; {use}")
        elif "." not in dotted and builtins:
            self.add(where, f"unknown {label} '{dotted}'{did_you_mean(dotted, builtins)}; {use}")
        elif "." not in dotted or not all(part.isidentifier() for part in dotted.split(".")):
            self.add(where, f"'{dotted}' is not a dotted path like 'package.module.function'")
        elif self.check_imports:
            try:
                resolve_dotted(dotted)
            except ImportError as exc:
                self.add(where, str(exc))

    def review_policy(self, raw: object, path: str) -> bool:
        before = len(self.problems)
        if not self.is_object(raw, path, '{"policy": "no_review"}'):
            return False
        assert isinstance(raw, dict)
        policy_path = join(path, "policy")
        rp = self.known_keys(raw, REVIEW_KEYS, path)
        policy = rp.get("policy")
        if "policy" not in rp:
            self.add(policy_path, f"field required; {_REVIEW_HINT}")
        elif not isinstance(policy, str):
            self.add(policy_path, f"expected a string, got {describe(policy)}; {_REVIEW_HINT}")
        elif policy not in REVIEW_BUILTINS and "." not in policy:
            self.add(
                policy_path,
                f"unknown review policy '{policy}'{did_you_mean(policy, REVIEW_BUILTINS)}; {_REVIEW_HINT}",
            )
        elif policy not in REVIEW_BUILTINS:
            self.dotted(policy, policy_path)
        sampled = policy == "sampled_review"
        rate, max_reviews = rp.get("rate"), rp.get("max_reviews")
        if rate is None:
            if sampled:
                self.add(
                    join(path, "rate"),
                    "sampled_review needs 'rate', the share of submissions reviewed (0 to 1)",
                )
        elif not isinstance(rate, int | float) or isinstance(rate, bool):
            self.add(join(path, "rate"), f"expected a number from 0 to 1, got {describe(rate)}")
        elif not 0 <= rate <= 1:
            self.add(join(path, "rate"), f"must be between 0 and 1, got {rate!r}")
        if max_reviews is None:
            if sampled:
                self.add(
                    join(path, "max_reviews"),
                    "sampled_review needs 'max_reviews', the most review levels (0 or more)",
                )
        elif not isinstance(max_reviews, int) or isinstance(max_reviews, bool):
            self.add(join(path, "max_reviews"), f"expected a whole number (0 or more), got {describe(max_reviews)}")
        elif max_reviews < 0:
            self.add(join(path, "max_reviews"), f"must be 0 or more, got {max_reviews}")
        self.kwargs(rp, path)
        return len(self.problems) == before

    def assignment_policy(self, raw: object, path: str, related: list[tuple[str, str]]) -> bool:
        """Also appends the steps named by `previously_completed_steps` to `related`, to check later."""
        before = len(self.problems)
        example = '{"policy_function": {"entry_level": {"path": "anyone_certified"}}}'
        if not self.is_object(raw, path, example):
            return False
        assert isinstance(raw, dict)
        roles = self.known_keys(raw, ("policy_function", *ROLES), path)
        roles_path = path
        if "policy_function" in roles:
            if any(role in roles for role in ROLES):
                self.add(
                    path,
                    "give 'entry_level' and 'reviewer' inside 'policy_function' (B12) or directly, not both",
                )
                return False
            roles_path = join(path, "policy_function")
            if not self.is_object(
                roles["policy_function"], roles_path, '{"entry_level": {"path": "anyone_certified"}}'
            ):
                return False
            roles = self.known_keys(roles["policy_function"], ROLES, roles_path)
        for role in ROLES:
            if roles.get(role) is None:
                continue
            role_path = join(roles_path, role)
            name = self.callable_ref(
                roles[role],
                role_path,
                label="assignment policy",
                builtins=ASSIGNMENT_BUILTINS,
                prefixes=ASSIGNMENT_PREFIXES,
            )
            if name in ASSIGNMENT_BUILTINS:
                self.assignment_kwargs(name, roles[role].get("kwargs") or {}, join(role_path, "kwargs"), related)
        return len(self.problems) == before

    def assignment_kwargs(
        self, name: str, kwargs: dict[str, Any], path: str, related_out: list[tuple[str, str]]
    ) -> None:
        takes = ASSIGNMENT_BUILTINS[name]
        for key in kwargs:
            if key not in takes:
                hint = did_you_mean(key, takes) or (f"; it takes {', '.join(takes)}" if takes else "; it takes none")
                self.add(join(path, str(key)), f"unknown argument for {name}{hint}")
        if name == "specified_worker":
            username = kwargs.get("username")
            if not isinstance(username, str) or not username:
                got = "it is missing" if username is None else f"got {describe(username)}"
                self.add(join(path, "username"), f"specified_worker needs 'username', the worker's username; {got}")
        elif name == "previously_completed_steps":
            related = kwargs.get("related_steps")
            related_path = join(path, "related_steps")
            if not isinstance(related, list) or not related:
                got = "it is missing" if related is None else f"got {describe(related)}"
                self.add(
                    related_path,
                    "previously_completed_steps needs 'related_steps', a list of human step slugs whose "
                    f"worker takes this step; {got}",
                )
                return
            for i, item in enumerate(related):
                if not isinstance(item, str):
                    self.add(join(related_path, i), f"expected a step slug (a string), got {describe(item)}")
            related_out.extend(strings(related, related_path))

    def creation_policy(self, raw: object, path: str) -> bool:
        before = len(self.problems)
        if not self.is_object(raw, path, '{"policy_function": {"path": "always_create"}}'):
            return False
        assert isinstance(raw, dict)
        ref: object = self.known_keys(raw, ("policy_function", *CALLABLE_KEYS), path)
        assert isinstance(ref, dict)
        if "policy_function" in ref:
            if len(ref) > 1:
                self.add(path, "give the policy inside 'policy_function' (B12) or directly, not both")
                return False
            ref, path = ref["policy_function"], join(path, "policy_function")
        self.callable_ref(ref, path, label="creation policy", builtins=CREATION_BUILTINS, prefixes=CREATION_PREFIXES)
        return len(self.problems) == before
