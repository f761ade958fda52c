#!/usr/bin/python3
"""Receives OpenStack notifications with oslo.messaging, as Ceilometer or Searchlight would, and prints
each as one JSON line on stdout: {"priority", "publisher_id", "event_type", "payload", "metadata"}.

usage: notification_listener.py TRANSPORT_URL [EXCHANGE [TOPIC [durable]]]
       (defaults: glance, notifications; `durable`: amqp_durable_queues = True, so that its exchange and
       queues outlive a broker restart)
Prints LISTENING once its queues are declared; stops on SIGTERM or SIGINT."""
import json
import signal
import sys
import threading

from oslo_config import cfg
import oslo_messaging

url = sys.argv[1]
exchange = sys.argv[2] if len(sys.argv) > 2 else 'glance'
topic = sys.argv[3] if len(sys.argv) > 3 else 'notifications'
durable = len(sys.argv) > 4 and sys.argv[4] == 'durable'

conf = cfg.ConfigOpts()
conf([], project='gaze-listener')
transport = oslo_messaging.get_notification_transport(conf, url=url)
if durable:
    conf.set_override('amqp_durable_queues', True, group='oslo_messaging_rabbit')
lock = threading.Lock()


class Printer(object):
    def _print(self, priority, ctxt, publisher_id, event_type, payload, metadata):
        line = json.dumps({'priority': priority, 'publisher_id': publisher_id, 'event_type': event_type,
                           'payload': payload, 'metadata': metadata, 'context': ctxt}, default=str)
        with lock:
            sys.stdout.write(line + '\n')
            sys.stdout.flush()

    def __getattr__(self, priority):
        if priority in ('audit', 'critical', 'debug', 'info', 'error', 'sample', 'warn'):
            return lambda ctxt, publisher_id, event_type, payload, metadata: self._print(
                priority.upper(), ctxt, publisher_id, event_type, payload, metadata)
        raise AttributeError(priority)


# oslo.messaging looks endpoint methods up on the class: give it real ones.
for name in ('audit', 'critical', 'debug', 'info', 'error', 'sample', 'warn'):
    setattr(Printer, name, (lambda p: lambda self, ctxt, publisher_id, event_type, payload, metadata:
                            self._print(p.upper(), ctxt, publisher_id, event_type, payload, metadata))(name))

targets = [oslo_messaging.Target(topic=topic, exchange=exchange)]
listener = oslo_messaging.get_notification_listener(transport, targets, [Printer()], executor='threading')
listener.start()
sys.stdout.write('LISTENING\n')
sys.stdout.flush()

done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
signal.signal(signal.SIGINT, lambda *_: done.set())
while not done.wait(0.5):
    pass
listener.stop()
listener.wait()
transport.cleanup()
