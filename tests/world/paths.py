"""Where the checkout, its cache and the world's state live."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(REPO, ".cache")
COLLECTIONS_ROOT = os.path.join(CACHE, "collections")
COLLECTION_LINK = os.path.join(COLLECTIONS_ROOT, "ansible_collections", "rollout", "codedeploy")
# Fleet state (overlay upper dirs, keys, pid files). It must not lie below a folder the hosts
# overlay (/usr /etc /var /opt /home /srv): overlayfs refuses an upper dir inside its lower dir.
STATE_ROOT = os.environ.get("ROLLOUT_WORLD_STATE", "/mnt/rollout-codedeploy-world")
SAMPLE_APP = os.path.join(REPO, "examples", "sample-app")


def ensure_collection_link():
    """Create (or repair) the ansible_collections/rollout/codedeploy symlink to the checkout."""
    os.makedirs(os.path.dirname(COLLECTION_LINK), exist_ok=True)
    if os.path.islink(COLLECTION_LINK) and os.path.realpath(COLLECTION_LINK) == os.path.realpath(REPO):
        return COLLECTION_LINK
    if os.path.lexists(COLLECTION_LINK):
        os.unlink(COLLECTION_LINK)
    os.symlink(os.path.relpath(REPO, os.path.dirname(COLLECTION_LINK)), COLLECTION_LINK)
    return COLLECTION_LINK


def collections_path():
    """ANSIBLE_COLLECTIONS_PATH value: this checkout first, then Ansible's defaults.

    The pip-installed collections (amazon.aws, ...) are found through sys.path scanning.
    """
    return os.pathsep.join([COLLECTIONS_ROOT, os.path.expanduser("~/.ansible/collections"),
                            "/usr/share/ansible/collections"])
