"""tools/world: start, inspect and stop a world by hand (see docs/development.md)."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from world.fleet import WORLDS, Fleet, FleetError  # noqa: E402  (after the sys.path entry)
from world.world import World  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tools/world", description=__doc__)
    parser.add_argument("--world", default="demo", choices=sorted(WORLDS), help="which world (default: demo)")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start moto and a fleet (replaces a running one of the same world)")
    start.add_argument("--hosts", type=int, default=6)
    sub.add_parser("stop", help="stop the world and remove every namespace, mount, veth, process and state file")
    sub.add_parser("status", help="list the hosts and the moto endpoint as JSON")
    ssh = sub.add_parser("ssh", help="print the ssh command line for a host (by name or index)")
    ssh.add_argument("host")
    sub.add_parser("env", help="print the path of the env.sh to source for ansible-playbook and the AWS CLI")
    args = parser.parse_args(argv)

    try:
        if args.command == "start":
            world = World(args.world).start(args.hosts)
            print("world %s: moto at %s, %d hosts; source %s" % (
                args.world, world.moto.endpoint, len(world.fleet.hosts), os.path.join(world.fleet.state, "env.sh")))
        elif args.command == "stop":
            World(args.world).stop()
            print("world %s stopped" % args.world)
        elif args.command == "status":
            world = World.attach(args.world)
            print(json.dumps({"world": args.world, "moto": world.moto.endpoint,
                              "hosts": [h.as_dict() for h in sorted(world.fleet.hosts.values(), key=lambda h: h.index)]}, indent=2))
        elif args.command == "ssh":
            fleet = Fleet.load(args.world)
            hosts = {h.name: h for h in fleet.hosts.values()}
            hosts.update({str(h.index): h for h in fleet.hosts.values()})
            if args.host not in hosts:
                raise FleetError("no host %r in world %s; hosts: %s" % (args.host, args.world, ", ".join(sorted(h.name for h in fleet.hosts.values()))))
            print("ssh -i %s -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null root@%s" % (fleet.key_file, hosts[args.host].address))
        elif args.command == "env":
            print(os.path.join(Fleet(args.world).state, "env.sh"))
    except FleetError as exc:
        print("tools/world: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
