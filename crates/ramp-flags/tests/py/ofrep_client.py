"""Reads ramp-flags' OFREP server with the real OpenFeature Python SDK and OFREP provider.

Run by crates/ramp-flags/tests/python_client.rs with the interpreter of target/pyclients
(scripts/python-clients.sh installs openfeature-sdk and openfeature-provider-ofrep there).

    ofrep_client.py check OPEN_URL TOKEN_URL TOKEN LIMITED_URL
        Checks values, variants, reasons, metadata and errors (flag not found, targeting key
        missing, type mismatch, a disabled flag, a wrong token, a rate limit with
        Retry-After). Prints "ok" and exits 0, or prints every failed check and exits 1.

    ofrep_client.py cohort URL COUNT
        Evaluates the boolean rollout flag for users customer-0 .. customer-(COUNT-1) and
        prints one JSON object: {"on": [bool, ...], "reasons": [str, ...]}. The Rust test
        moves the rollout's weight between runs and checks that the cohort only grows.
"""

import json
import sys

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.contrib.provider.ofrep import OFREPProvider

FAILURES = []


def expect(what, got, want):
    """Records a failed check instead of stopping at the first one."""
    if got != want:
        FAILURES.append(f"{what}: got {got!r}, want {want!r}")


def client_for(domain, url, token=None):
    """A client bound to its own provider, so that several servers can be read at once."""
    headers = (lambda: {"Authorization": f"Bearer {token}"}) if token else None
    api.set_provider(OFREPProvider(url, headers_factory=headers, timeout=5.0), domain)
    return api.get_client(domain)


def user(key):
    return EvaluationContext(targeting_key=key, attributes={"plan": "pro", "seats": 12})


def check(open_url, token_url, token, limited_url):
    c = client_for("open", open_url)

    d = c.get_float_details("ratio", 0.0, user("alice"))
    expect("ratio value", d.value, 0.25)
    expect("ratio reason", d.reason, Reason.STATIC)
    expect("ratio variant", d.variant, "low")
    expect("ratio metadata", dict(d.flag_metadata), {"owner": "growth", "ticket": 42})
    expect("ratio error", d.error_code, None)

    d = c.get_integer_details("max_items", 0, user("alice"))
    expect("max_items value", d.value, 100)
    expect("max_items reason", d.reason, Reason.STATIC)
    expect("max_items variant", d.variant, "large")

    d = c.get_object_details("limits", {}, user("alice"))
    expect("limits value", d.value, {"rps": 10, "tier": "basic"})
    expect("limits reason", d.reason, Reason.STATIC)
    expect("limits variant", d.variant, "basic")

    # No weight published yet: the rollout flag serves its default variant.
    d = c.get_boolean_details("phase8_encryption_enabled", True, user("alice"))
    expect("rollout flag before any weight: value", d.value, False)
    expect("rollout flag before any weight: reason", d.reason, Reason.DEFAULT)
    expect("rollout flag before any weight: variant", d.variant, "off")

    d = c.get_string_details("banner_color", "none", user("alice"))
    expect("banner_color reason", d.reason, Reason.TARGETING_MATCH)
    expect("banner_color value is a variant", d.value in ("#f00", "#00f"), True)
    expect("banner_color variant matches value", {"#f00": "red", "#00f": "blue"}.get(d.value), d.variant)

    # Flags that need no targeting key evaluate without a context at all.
    d = c.get_integer_details("max_items", 0)
    expect("max_items without context", (d.value, d.reason), (100, Reason.STATIC))

    # Errors: the code default comes back with the error code.
    d = c.get_boolean_details("nope", True, user("alice"))
    expect("missing flag value", d.value, True)
    expect("missing flag error", d.error_code, ErrorCode.FLAG_NOT_FOUND)
    expect("missing flag reason", d.reason, Reason.ERROR)

    d = c.get_string_details("banner_color", "fallback", EvaluationContext(attributes={"plan": "pro"}))
    expect("no targeting key value", d.value, "fallback")
    expect("no targeting key error", d.error_code, ErrorCode.TARGETING_KEY_MISSING)

    d = c.get_boolean_details("banner_color", False, user("alice"))
    expect("type mismatch value", d.value, False)
    expect("type mismatch error", d.error_code, ErrorCode.TYPE_MISMATCH)

    # A disabled flag answers {"key", "reason": "DISABLED", "metadata"} without value and
    # variant (OFREP's codeDefaultFlag, as flagd does): the application gets its code default.
    # Provider 0.3.0 indexes data["variant"] unconditionally, so it reports that as a GENERAL
    # error ('variant'); a provider that follows the schema reports reason DISABLED. Either
    # way the value is the code default, which is what matters to the application.
    for default in (True, False):
        d = c.get_boolean_details("old_checkout", default, user("alice"))
        expect(f"disabled flag value is the code default ({default})", d.value, default)
        expect(
            "disabled flag reason",
            d.reason == Reason.DISABLED or (d.reason == Reason.ERROR and d.error_message == "'variant'"),
            True,
        )

    # Authentication.
    d = client_for("no-token", token_url).get_float_details("ratio", -1.0, user("alice"))
    expect("no token value", d.value, -1.0)
    expect("no token error", d.error_code, ErrorCode.GENERAL)
    expect("no token message", d.error_message, "unauthorized")
    d = client_for("wrong-token", token_url, token + "x").get_float_details("ratio", -1.0, user("alice"))
    expect("wrong token error", (d.error_code, d.error_message), (ErrorCode.GENERAL, "unauthorized"))
    d = client_for("right-token", token_url, token).get_float_details("ratio", -1.0, user("alice"))
    expect("right token", (d.value, d.error_code), (0.25, None))

    # The rate limit (one request, then 429 with Retry-After): the provider pauses itself.
    limited = client_for("limited", limited_url)
    d = limited.get_float_details("ratio", -1.0, user("alice"))
    expect("first request under the limit", d.value, 0.25)
    d = limited.get_float_details("ratio", -1.0, user("alice"))
    expect("over the limit: value", d.value, -1.0)
    expect("over the limit: error", d.error_code, ErrorCode.GENERAL)
    expect("over the limit: Retry-After was read", "retry after" in (d.error_message or "").lower(), True)
    d = limited.get_float_details("ratio", -1.0, user("alice"))
    expect("paused until Retry-After", "paused" in (d.error_message or ""), True)

    if FAILURES:
        print("\n".join(FAILURES))
        return 1
    print("ok")
    return 0


def cohort(url, count):
    c = client_for("cohort", url)
    on, reasons = [], []
    for i in range(count):
        d = c.get_boolean_details("phase8_encryption_enabled", False, user(f"customer-{i}"))
        if d.error_code is not None:
            print(f"customer-{i}: {d.error_code} {d.error_message}", file=sys.stderr)
            return 1
        on.append(d.value)
        reasons.append(str(d.reason))
    print(json.dumps({"on": on, "reasons": reasons}))
    return 0


def main(argv):
    if len(argv) == 6 and argv[1] == "check":
        return check(argv[2], argv[3], argv[4], argv[5])
    if len(argv) == 4 and argv[1] == "cohort":
        return cohort(argv[2], int(argv[3]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
