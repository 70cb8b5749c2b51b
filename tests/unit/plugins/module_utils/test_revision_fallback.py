"""Where a rollback finds the revision for a host that lost the earlier archive (plugins/module_utils/revision_source.py)."""
import pytest

from ansible_collections.rollout.codedeploy.plugins.module_utils import revision_source


@pytest.mark.parametrize("source, revision", [
    ({"type": "s3", "bucket": "b", "key": "k.tgz", "version": "v1", "etag": None},
     {"s3": {"bucket": "b", "key": "k.tgz", "version": "v1", "etag": None}}),
    ({"type": "local", "path": "/srv/rev"}, {"path": "/srv/rev"}),
    ({"type": "git", "repo": "https://git.example/app.git", "commit": "abc"}, {"git": {"repo": "https://git.example/app.git", "commit": "abc"}}),
    ({"type": "url", "url": "https://x/y.tgz?X-Amz-Signature=REDACTED", "sha256": "a"}, None),
    (None, None),
])
def test_a_recorded_source_as_a_revision_again(source, revision):
    assert revision_source.as_revision(source) == revision


def test_the_cache_is_looked_up_by_sha256(tmp_path):
    (tmp_path / ("b" * 64 + ".zip")).write_bytes(b"PK")
    assert revision_source.cached_bundle("b" * 64, str(tmp_path)) == str(tmp_path / ("b" * 64 + ".zip"))
    assert revision_source.cached_bundle("c" * 64, str(tmp_path)) is None
    assert revision_source.cached_bundle(None, str(tmp_path)) is None
