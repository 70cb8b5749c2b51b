"""Count the SSH commands Ansible runs per host, from the output of a run with ``-vvv``.

At that verbosity the ssh connection plugin prints ``<address> SSH: EXEC ...`` for every process
it starts towards a host: a remote command, a pipelined module run, an sftp/scp file transfer.
Commands for localhost (connection local) are not SSH and are not counted.
"""
import collections
import re

EXEC_LINE = re.compile(r"^<([^>]+)> SSH: EXEC ", re.MULTILINE)


def ssh_commands(output):
    """``{address: number of SSH commands}`` found in ``-vvv`` output."""
    return dict(collections.Counter(EXEC_LINE.findall(output)))


def per_host(counts, addresses):
    """The counts of ``addresses`` as a list (0 for a host that got none)."""
    return [counts.get(address, 0) for address in addresses]
