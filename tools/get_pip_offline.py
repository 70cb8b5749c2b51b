"""Offline stand-in for the get-pip bootstrap script that ansible-test downloads on first use.

ansible-test runs ``python get_pip_X_Y.py [pip options] pip==X.Y ...`` inside each fresh sanity
virtual environment. This machine reaches package registries but not that download site, so
tools/setup installs this file in the bootstrap cache: it seeds pip with ensurepip and then
lets that pip install the requested packages from the registry.
"""
import subprocess
import sys

IGNORED = {"--no-setuptools", "--no-wheel"}


def main(argv):
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    args = [a for a in argv if a not in IGNORED]
    return subprocess.run([sys.executable, "-m", "pip", "install"] + args, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
