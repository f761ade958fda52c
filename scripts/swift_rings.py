#!/usr/bin/python3
"""Helpers for scripts/start-swift.sh, run with Debian's /usr/bin/python3 (python3-swift lives there only).

  swift_rings.py ports N [EXCLUDE...]       N distinct free TCP ports on 127.0.0.1, one per line
  swift_rings.py rings ETC NAME:PORT...     builds ETC/NAME.ring.gz (one device, one replica, part power 10)
                                            unless a ring already places its device on that port
  swift_rings.py check-xattr DIR            fails unless user xattrs can be written in DIR (Swift needs them)
  swift_rings.py serve SERVER CONF          runs one Swift wsgi server (account-server, container-server,
                                            object-server, proxy-server) as /usr/bin/swift-SERVER would, but
                                            with swift.conf read from CONF's directory instead of /etc/swift

Everything is done in one process per call: each `swift-ring-builder` CLI call spends about a second on
imports, so three rings built here take about 1 s instead of about 6 s.
"""

import os
import socket
import sys

PART_POWER = 10
REPLICAS = 1
MIN_PART_HOURS = 1


def free_ports(count, exclude):
    # All sockets stay bound until the end, so the ports are distinct; they are closed again before the
    # servers bind them (a small race, as with any free-port probe).
    socks, ports = [], []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
            if port not in exclude:
                ports.append(port)
        return ports
    finally:
        for s in socks:
            s.close()


def build_rings(etc, specs):
    from swift.common.ring import RingBuilder, RingData

    for spec in specs:
        name, port = spec.split(':')
        port = int(port)
        ring_path = os.path.join(etc, '%s.ring.gz' % name)
        if os.path.exists(ring_path):
            try:
                devs = [d for d in RingData.load(ring_path).devs if d]
                if len(devs) == 1 and devs[0]['port'] == port and devs[0]['ip'] == '127.0.0.1':
                    continue
            except Exception:
                pass  # unreadable: build it again
        builder = RingBuilder(PART_POWER, REPLICAS, MIN_PART_HOURS)
        builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port,
                         'device': 'sdb1', 'weight': 100, 'meta': ''})
        builder.rebalance()
        # With a single device every partition lives on it, so rebuilding for a new port keeps all data
        # reachable (placement also depends on the hash prefix/suffix in swift.conf, which are fixed).
        builder.get_ring().save(ring_path)
        builder.save(os.path.join(etc, '%s.builder' % name))


def check_xattr(path):
    probe = os.path.join(path, '.xattr-probe')
    with open(probe, 'w'):
        pass
    try:
        os.setxattr(probe, 'user.swift.probe', b'x' * 256)
    except OSError as e:
        sys.exit('%s does not support user xattrs (%s); Swift stores object metadata in them' % (path, e))
    finally:
        os.unlink(probe)


def serve(server, conf):
    # swift.common.utils reads swift.conf (hash prefix/suffix, storage policies, constraints) from
    # /etc/swift whatever `swift_dir` says; Debian ships one there with `changeme` hashes. Point it at our
    # own directory before anything else is loaded, then reload what was read at import time.
    from swift.common import utils
    utils.set_swift_dir(os.path.dirname(os.path.abspath(conf)))
    from swift.common import constraints, storage_policy
    constraints.reload_constraints()
    storage_policy.reload_storage_policies()
    from swift.common.wsgi import run_wsgi

    kwargs = {'verbose': True}  # log to stderr (the caller sends it to a file); there is no syslog here
    if server == 'object-server':
        from swift.obj import server as object_server
        kwargs['global_conf_callback'] = object_server.global_conf_callback
    sys.exit(run_wsgi(conf, server, **kwargs))


def main(argv):
    if len(argv) >= 2 and argv[0] == 'ports':
        print('\n'.join(str(p) for p in free_ports(int(argv[1]), {int(p) for p in argv[2:]})))
    elif len(argv) >= 3 and argv[0] == 'rings':
        build_rings(argv[1], argv[2:])
    elif len(argv) == 2 and argv[0] == 'check-xattr':
        check_xattr(argv[1])
    elif len(argv) == 3 and argv[0] == 'serve':
        serve(argv[1], argv[2])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:])
