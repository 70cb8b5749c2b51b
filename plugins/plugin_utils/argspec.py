# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugins check their arguments against the options their module stub documents, so the
documentation is the spec and the two cannot drift apart. Controller-only."""

from __future__ import annotations

import importlib

import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

_KEYS = ("type", "choices", "default", "elements", "required")
#: Options whose values are never shown (module docs may not say no_log; the spec does).
SECRET_WORDS = ("secret", "token", "password")


#: The prefix of this collection's doc fragments in extends_documentation_fragment.
OWN_FRAGMENTS = "rollout.codedeploy."


def documented_options(documentation):
    """A module's options as ansible-doc shows them: those of its own doc fragments (rollout.codedeploy.*), then its own."""
    doc = yaml.safe_load(documentation) or {}
    options = {}
    for name in doc.get("extends_documentation_fragment") or ():
        if name.startswith(OWN_FRAGMENTS):
            module, _dot, variable = name[len(OWN_FRAGMENTS):].partition(".")
            fragment = importlib.import_module("ansible_collections.rollout.codedeploy.plugins.doc_fragments.%s" % module).ModuleDocFragment
            options.update((yaml.safe_load(getattr(fragment, (variable or "documentation").upper())) or {}).get("options") or {})
    options.update(doc.get("options") or {})
    return options


def spec_from_documentation(documentation):
    """An argument spec (as AnsibleModule takes it) from a module's DOCUMENTATION string."""
    options = documented_options(documentation)
    spec = {name: _option(option) for name, option in options.items()}
    for name, option in spec.items():
        if any(word in name for word in SECRET_WORDS):
            option["no_log"] = True
    return spec


def _option(option):
    spec = {key: option[key] for key in _KEYS if key in option}
    if option.get("suboptions"):
        spec["options"] = {name: _option(sub) for name, sub in option["suboptions"].items()}
    return spec


def check_arguments(spec, arguments, action):
    """The arguments with defaults applied, or ValueError with Ansible's own wording of what is wrong."""
    result = ArgumentSpecValidator(spec).validate(dict(arguments))
    if result.error_messages:
        raise ValueError("%s: %s" % (action, "; ".join(result.error_messages)))
    return result.validated_parameters
