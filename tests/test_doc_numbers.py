"""Every number the documentation states about the sidecar's behaviour is the constant the code uses.

Each claim is a pattern with the words the docs use around the number; every place a pattern matches (in the
README, the changelog, docs/ and the CLI's help) must give the constant's value, and every pattern must
match somewhere, so rewording a sentence means updating its claim here, not silently dropping the check.
Besides the listed claims, any number written beside a constant's name (``40 attempts (`MAX_THROTTLED_ATTEMPTS`)``,
``(`MAX_THROTTLED_ATTEMPTS`, 40``) and every default and range in the settings table are checked.
Measured figures (reliability.md's run times and attempt counts, performance.md's tables) are not claims
about constants and are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.credentials import _DEFAULT_ADVISORY_REFRESH_TIMEOUT as ADVISORY_REFRESH_SECONDS

from sidecar import (
    assumed_role,
    aws,
    bodylimit,
    metrics,
    names,
    notify,
    plan,
    references,
    refresh,
    retry_policy,
    task_metadata,
    versions,
)
from sidecar.lint import start_timeout
from sidecar.settings import model as config
from sidecar.settings.options import OPTIONS

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")))
WORDS = {"half": 0.5, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
         "nine": 9, "ten": 10, "twenty": 20, "forty": 40, "sixty": 60}
NUMBER = r"(\d[\d,]*(?:\.\d+)?|" + "|".join(WORDS) + ")"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Claim:
    """``pattern``'s ``{}`` marks each number, in order; ``values`` are the constants they must equal."""

    pattern: str
    values: tuple[float, ...]

    def regex(self) -> re.Pattern[str]:
        words = [re.escape(part) for part in self.pattern.split("{}")]
        text = NUMBER.join(words)
        return re.compile(re.sub(r"(\\ )+", r"\\s+", text), re.IGNORECASE)


CLAIMS = (
    # retry counts
    Claim("at most {} attempts for server errors", (retry_policy.MAX_ATTEMPTS,)),
    Claim("at most {} for throttling", (retry_policy.MAX_THROTTLED_ATTEMPTS,)),
    Claim("every one of its attempts (at least {})", (retry_policy.MAX_ATTEMPTS,)),
    Claim("{} times in a row is given up", (retry_policy.MAX_ATTEMPTS,)),
    Claim("a call is given up after {} attempts", (retry_policy.MAX_ATTEMPTS,)),
    Claim("{} attempts sleep longer than the {} s deadline", (retry_policy.MAX_THROTTLED_ATTEMPTS,
                                                               config.DEFAULT_TIMEOUT_SECONDS)),
    Claim("at most {} of what is left of `SIDECAR_TIMEOUT`", (retry_policy.PRIMARY_SHARE,)),
    Claim("(at most {} attempts for server errors and network errors, {} for throttling)",
          (retry_policy.MAX_ATTEMPTS, retry_policy.MAX_THROTTLED_ATTEMPTS)),
    # backoff
    Claim("({} s base, {} s cap)", (retry_policy.BACKOFF_MULTIPLIER_SECONDS, retry_policy.BACKOFF_MAX_SECONDS)),
    Claim("back-off from {} s up to {} s", (retry_policy.BACKOFF_MULTIPLIER_SECONDS, retry_policy.BACKOFF_MAX_SECONDS)),
    Claim("longer than the {} second the retry policy keeps", (retry_policy.MIN_ATTEMPT_SECONDS,)),
    Claim("shorter backoff ({} s,", (refresh.FAILURE_BACKOFF_BASE_SECONDS,)),
    Claim("randomly within +-{} %", (refresh.JITTER * 100,)),
    # timeouts
    Claim("{} s connect and {} s read", (aws.CONNECT_TIMEOUT_SECONDS, aws.READ_TIMEOUT_SECONDS)),
    Claim("each gives up after {} s", (aws.CONNECT_TIMEOUT_SECONDS,)),
    Claim("(`SIDECAR_TIMEOUT`, {} s)", (config.DEFAULT_TIMEOUT_SECONDS,)),
    Claim("and the {} s deadline", (config.DEFAULT_TIMEOUT_SECONDS,)),
    Claim("`SIDECAR_TIMEOUT` of {} s or more", (config.ECS_MAX_START_TIMEOUT_SECONDS,)),
    Claim("which Fargate caps at {} s", (config.ECS_MAX_START_TIMEOUT_SECONDS,)),
    Claim("and a {} s limit; its exit code is logged", (notify.NOTIFY_COMMAND_TIMEOUT_SECONDS,)),
    Claim("at most {} s on Fargate", (config.ECS_MAX_START_TIMEOUT_SECONDS,)),
    Claim("whose `startTimeout` is at most {} s", (config.ECS_MAX_START_TIMEOUT_SECONDS,)),
    # the linter's startTimeout rule
    Claim("`SIDECAR_TIMEOUT` plus {} s", (start_timeout.MARGIN_SECONDS,)),
    Claim("at least SIDECAR_TIMEOUT plus {} s", (start_timeout.MARGIN_SECONDS,)),
    Claim("plus a margin of {} s", (start_timeout.MARGIN_SECONDS,)),
    Claim("{} s when unset", (config.DEFAULT_TIMEOUT_SECONDS,)),
    Claim("(ECS's defaults {} s and", (start_timeout.DEFAULT_HEALTH_INTERVAL_SECONDS,)),
    # batch sizes
    Claim("`GetParameters` in batches of {}", (plan.MAX_GET_PARAMETERS_NAMES,)),
    Claim("`MaxResults` {}, the most botocore's SSM model allows", (plan.MAX_PARAMETERS_BY_PATH_RESULTS,)),
    Claim("by the bound for {} values of that size", (bodylimit.VALUES_PER_CALL["GetParametersByPath"],)),
    Claim("at most {} levels (a parameter name has at most {})",
          (references.MAX_PARAMETER_LEVELS - 1, references.MAX_PARAMETER_LEVELS)),
    Claim("`BatchGetSecretValue` in batches of {}", (plan.MAX_BATCH_SECRET_IDS,)),
    Claim("`GetParameters` with up to {} names", (plan.MAX_GET_PARAMETERS_NAMES,)),
    Claim("`BatchGetSecretValue` with up to {} ids", (plan.MAX_BATCH_SECRET_IDS,)),
    Claim("fetches up to {} `AWSCURRENT` secrets in one call", (plan.MAX_BATCH_SECRET_IDS,)),
    Claim("in chunks of {}", (plan.MAX_BATCH_SECRET_IDS,)),
    Claim("{} names per call", (plan.MAX_GET_PARAMETERS_NAMES,)),
    Claim("ceil(P/{})", (plan.MAX_GET_PARAMETERS_NAMES,)),
    Claim("ceil(S/{})", (plan.MAX_BATCH_SECRET_IDS,)),
    Claim("`SecretIdList` takes 1 to {} ids", (plan.MAX_BATCH_SECRET_IDS,)),
    Claim("({} Secrets Manager secrets to a call", (plan.MAX_BATCH_SECRET_IDS,)),
    Claim("at most with the +-{} % jitter", (refresh.JITTER * 100,)),
    Claim("`BatchGetSecretValue` with up to {} ids per call", (plan.MAX_BATCH_SECRET_IDS,)),
    # limits and defaults outside the settings table
    Claim("a component over {} bytes or a name over {} bytes", (names.MAX_COMPONENT_BYTES, names.MAX_NAME_BYTES)),
    Claim("`SIDECAR_MAX_BYTES` ({} MiB default)", (config.DEFAULT_MAX_BYTES / MIB,)),
    Claim("every N seconds (at least {}, at most {} s;", (config.MIN_REFRESH_INTERVAL_SECONDS, config.MAX_SECONDS)),
    Claim("| {} intervals |", (config.HEALTH_INTERVALS,)),
    Claim("at most {} s, one week", (config.MAX_SECONDS,)),
    Claim("at most {} s (one week)", (config.MAX_SECONDS,)),
    Claim("larger is exit 3 (at most {})", (config.MAX_MAX_BYTES,)),
    Claim("`SIDECAR_MAX_BYTES` at most {} (1 GiB)", (config.MAX_MAX_BYTES,)),
    # metrics
    Claim("waited for at most {} s and never past", (task_metadata.TIMEOUT_SECONDS,)),
    Claim("that is the {} metrics of the family set plus {} per outcome that occurred: {} for",
          (len(metrics.METRICS), len(metrics.METRICS), 2 * len(metrics.METRICS))),
    Claim("1-{} ASCII letters, digits, spaces", (metrics.MAX_NAMESPACE_CHARS,)),
    # an assumed role's session, and when botocore renews its credentials (botocore/credentials.py)
    Claim("`sts:RoleSessionName`) and lasts {} s", (assumed_role.DURATION_SECONDS,)),
    Claim("session `secrets-sidecar`, {} s)", (assumed_role.DURATION_SECONDS,)),
    Claim("renew when less than {} minutes are left", (ADVISORY_REFRESH_SECONDS / 60,)),
    Claim("values-per-call x ({} x SIDECAR_MAX_BYTES + {} KiB) + {} KiB",
          (bodylimit.JSON_ESCAPE_FACTOR, bodylimit.ITEM_OVERHEAD_BYTES / 1024,
           bodylimit.RESPONSE_OVERHEAD_BYTES / 1024)),
)

# Constants a doc may name in backticks with the number beside it.
NAMED_MODULES = (retry_policy, aws, plan, config, refresh, names, references, versions)
NAMED = {name: getattr(module, name) for module in NAMED_MODULES
         for name in dir(module) if re.fullmatch(r"[A-Z][A-Z0-9_]+", name)
         and isinstance(getattr(module, name), int | float) and not isinstance(getattr(module, name), bool)}

# The settings table's default column, and the CLI help's "(default N)", against the code's defaults.
DEFAULTS = {
    "timeout": config.DEFAULT_TIMEOUT_SECONDS,
    "maxBytes": config.DEFAULT_MAX_BYTES,
    "concurrency": config.DEFAULT_CONCURRENCY,
    "fileMode": int(oct(config.DEFAULT_FILE_MODE)[2:]),  # written as octal digits: 0400
}
RANGES = {"concurrency": (1, config.MAX_CONCURRENCY)}


def _value(text: str) -> float:
    return WORDS[text.lower()] if text.lower() in WORDS else float(text.replace(",", ""))


def _texts() -> dict[str, str]:
    texts = {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in DOCS}
    texts["secrets-sidecar --help"] = "\n".join(option.help for option in OPTIONS)
    return texts


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.pattern)
def test_each_claim_states_the_constant_everywhere(claim: Claim) -> None:
    found = [(where, match) for where, text in _texts().items() for match in claim.regex().finditer(text)]
    assert found, f"no document states {claim.pattern!r} any more: update or remove the claim"
    for where, match in found:
        stated = tuple(_value(group) for group in match.groups())
        assert stated == claim.values, f"{where}: {match.group(0)!r} says {stated}, the code says {claim.values}"


def test_numbers_beside_a_constants_name_are_its_value() -> None:
    checked = 0
    for where, text in _texts().items():
        for name, value in NAMED.items():
            quoted = re.escape(f"`{name}`")
            forms = (
                rf"{NUMBER}\s+(?:\w+\s+){{0,5}}\({quoted}\)",  # 40 attempts (`NAME`)
                rf"{quoted},\s+{NUMBER}\b",  # `NAME`, 40
                rf"{quoted}\s+\({NUMBER}\)",  # `NAME` (40)
            )
            for form in forms:
                for match in re.finditer(form, text, re.IGNORECASE):
                    checked += 1
                    assert _value(match.group(1)) == value, f"{where}: {match.group(0)!r}, but {name} = {value}"
    assert checked >= 4  # performance.md and reliability.md name MAX_ATTEMPTS and MAX_THROTTLED_ATTEMPTS


def test_settings_table_and_help_state_the_defaults_and_ranges() -> None:
    table = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for option in OPTIONS:
        row = re.search(rf"^\| `{option.env}` \| `{option.flag}` \| `{option.key}` \| (.*?) \| (.*) \|$", table, re.M)
        assert row, f"docs/configuration.md has no row for {option.env}"
        default, meaning = row.groups()
        if option.key in DEFAULTS:
            assert _value(default.strip("`")) == DEFAULTS[option.key], f"{option.env}: default {default}"
            help_default = re.search(rf"default {NUMBER}", option.help)
            assert help_default, f"--help of {option.flag} states no default"
            assert _value(help_default.group(1)) == DEFAULTS[option.key], f"{option.flag}: {option.help}"
        if option.key in RANGES:
            for text in (meaning, option.help):
                stated = re.search(r"\b(\d+)-(\d+)\b", text)
                assert stated, f"{option.env}: no range in {text!r}"
                assert tuple(map(int, stated.groups())) == RANGES[option.key], f"{option.env}: {text!r}"


def test_a_changed_constant_is_caught() -> None:
    """The check can fail: the same text against a different constant is a mismatch."""
    claim = Claim("at most {} for throttling", (retry_policy.MAX_THROTTLED_ATTEMPTS + 1,))
    text = (ROOT / "docs" / "how-it-works.md").read_text(encoding="utf-8")
    match = claim.regex().search(text)
    assert match is not None
    assert tuple(_value(g) for g in match.groups()) != claim.values
