"""Action plugins' argument specs come from their module's documentation, including this collection's doc fragments."""
from ansible_collections.rollout.codedeploy.plugins.modules import deployment, traffic_shift
from ansible_collections.rollout.codedeploy.plugins.plugin_utils.argspec import check_arguments, documented_options, spec_from_documentation

AWS = ("region", "endpoint_url", "profile", "access_key", "secret_key", "session_token", "validate_certs", "connect_timeout", "read_timeout")


def test_the_aws_fragment_options_are_in_the_spec_with_secrets_hidden():
    for module in (deployment, traffic_shift):
        spec = spec_from_documentation(module.DOCUMENTATION)
        assert set(AWS) <= set(spec), module.__name__
        assert spec["secret_key"]["no_log"] and spec["session_token"]["no_log"] and spec["connect_timeout"]["type"] == "int"


def test_a_module_option_overrides_the_fragment_one():
    assert "deployment group's region" in documented_options(deployment.DOCUMENTATION)["region"]["description"]
    assert "deployment group" not in documented_options(traffic_shift.DOCUMENTATION)["region"]["description"]


def test_an_option_from_the_fragment_is_checked_like_the_module_own():
    spec = spec_from_documentation(traffic_shift.DOCUMENTATION)
    try:
        check_arguments(spec, {"read_timeout": "soon"}, "traffic_shift")
    except ValueError as exc:
        assert "read_timeout" in str(exc)
    else:
        raise AssertionError("read_timeout=soon was accepted")
