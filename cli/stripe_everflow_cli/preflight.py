"""What the local stack checks before it starts anything, so that broken settings are
refused at once with one line naming the bad key — not accepted with "ready" and
then failing every event in the function logs.

1. The parameters against template.yaml's ``Parameters``, as CloudFormation checks
   them at deploy: known names, types, ``AllowedValues``, ``AllowedPattern``,
   ``MinLength``/``MaxLength``, ``MinValue``/``MaxValue``.
2. Each function's settings model over the environment the local stack gives it —
   the checks each function otherwise makes at its first event.

(The secret is checked when the config is read: ``localconfig``.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from stripe_everflow.config import (
    ClickSettings,
    MatchSettings,
    PostSettings,
    SyncSettings,
    WebhookSettings,
)
from stripe_everflow.posting.poster import postback_settings
from stripe_everflow_cli.localconfig import did_you_mean, printable
from stripe_everflow_cli.template import FunctionSpec, Resolver, function_specs

_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?")


class LocalSettingsError(ValueError):
    """A parameter or setting the local stack refuses; the message is one line."""


def _shown(value: str) -> str:
    return repr(printable(value))


def _number(text: str) -> Decimal | None:
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # the pattern admits only numbers; kept for safety
        return None


def _check_value(name: str, spec: Mapping[str, Any], value: str) -> None:
    """Raises LocalSettingsError when CloudFormation would refuse ``value``."""
    where = f"parameters.{name}"
    kind = str(spec.get("Type", "String"))
    allowed = spec.get("AllowedValues")
    if kind == "Number":
        number = _number(value)
        if number is None:
            raise LocalSettingsError(f"{where} must be a number, got {_shown(value)}")
        if allowed is not None and all(_number(str(a)) != number for a in allowed):
            choices = ", ".join(str(a) for a in allowed)
            raise LocalSettingsError(f"{where} must be one of {choices}, got {_shown(value)}")
        if "MinValue" in spec and number < Decimal(str(spec["MinValue"])):
            raise LocalSettingsError(f"{where} must be at least {spec['MinValue']}, got {value}")
        if "MaxValue" in spec and number > Decimal(str(spec["MaxValue"])):
            raise LocalSettingsError(f"{where} must be at most {spec['MaxValue']}, got {value}")
        return
    if kind != "String":
        return  # list and AWS-specific types are checked by CloudFormation alone
    if allowed is not None and value not in [str(a) for a in allowed]:
        choices = ", ".join(str(a) or '""' for a in allowed)
        raise LocalSettingsError(f"{where} must be one of {choices}, got {_shown(value)}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        raise LocalSettingsError(f"{where} must be at least {spec['MinLength']} characters")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        raise LocalSettingsError(f"{where} must be at most {spec['MaxLength']} characters")
    pattern = spec.get("AllowedPattern")
    if pattern is not None:
        try:
            compiled = re.compile(str(pattern))
        except re.error:
            return  # a Java-only construct: CloudFormation checks it at deploy
        # CloudFormation matches the whole value, anchors or not.
        if not compiled.fullmatch(value):
            description = spec.get("ConstraintDescription")
            rule = f"be {description}" if description else f"match {pattern}"
            raise LocalSettingsError(f"{where} must {rule}, got {_shown(value)}")


def check_parameters(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """Every template parameter's value (``given`` over the defaults), checked as
    CloudFormation would; raises LocalSettingsError naming the first bad one."""
    specs: Mapping[str, Any] = template.get("Parameters", {})
    for name in given:
        if name not in specs:
            raise LocalSettingsError(
                f"parameters.{printable(name)} is not a parameter of template.yaml"
                + did_you_mean(name, sorted(specs))
            )
    values: dict[str, str] = {}
    for name, spec in specs.items():
        if name in given:
            value = given[name]
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise LocalSettingsError(f"parameters.{name} is required (it has no default)")
        _check_value(name, spec, value)
        values[name] = value
    return values


# Each function's settings model, as its handler builds it at the first event. A
# function of the template missing here is started unchecked (a test keeps this
# table complete).
def _post_settings(environ: Mapping[str, str]) -> object:
    return postback_settings(PostSettings.from_environ(environ))


SETTINGS_BY_FUNCTION: dict[str, Callable[[Mapping[str, str]], object]] = {
    "StripeWebhookFunction": WebhookSettings.from_environ,
    "ClickIntakeFunction": ClickSettings.from_environ,
    "MatchPaymentFunction": MatchSettings.from_environ,
    "SyncClicksFunction": SyncSettings.from_environ,
    "PostEverflowFunction": _post_settings,
}


def _parameters_behind(spec: FunctionSpec, template: Mapping[str, Any]) -> dict[str, str]:
    """Environment variable → the template parameter it is a plain !Ref of."""
    names = template.get("Parameters", {})
    return {
        variable: value["Ref"]
        for variable, value in spec.environment.items()
        if isinstance(value, dict) and value.get("Ref") in names
    }


def check_function_settings(
    template: Mapping[str, Any],
    environments: Mapping[str, Mapping[str, str]],
) -> None:
    """Run each function's settings model over its environment; raises
    LocalSettingsError naming the parameter behind the bad variable."""
    for spec in function_specs(template):
        build = SETTINGS_BY_FUNCTION.get(spec.logical_id)
        if build is None or spec.logical_id not in environments:
            continue
        try:
            build(environments[spec.logical_id])
        except Exception as error:  # any refusal of the model, named in one line
            detail = " ".join(str(error).split()) or type(error).__name__
            behind = _parameters_behind(spec, template)
            named = [p for v, p in behind.items() if re.search(rf"\b{re.escape(v)}\b", detail)]
            where = f"parameters.{named[0]}" if named else spec.logical_id
            raise LocalSettingsError(
                f"{where}: {detail} ({spec.logical_id} would refuse every event)"
            ) from None


class PlaceholderResolver(Resolver):
    """Resolves the template before anything exists: each resource's name or
    attribute is a stand-in of the same shape (the settings models only check that
    such values are there)."""

    def ref(self, name: str) -> str:
        try:
            return super().ref(name)
        except KeyError:
            return f"local-{name}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1 and "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return f"local-{logical_id}-{attribute}"
        return super().resolve(value)

    def _substitute(self, text: str) -> str:
        return re.sub(
            r"\$\{([^}]+)\}",
            lambda m: f"local-{m.group(1)}" if "." in m.group(1) else self.ref(m.group(1)),
            text,
        )
