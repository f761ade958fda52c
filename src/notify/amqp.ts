import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { withoutPasswords } from '../config/redact.ts';
import type { ConnectionOptions } from 'node:tls';
import type { Logger } from '../util/logger.ts';
import type { Notification, NotificationDriver } from './notifier.ts';

// oslo.messaging's notification drivers on RabbitMQ (`messagingv2`, and `messaging` without the
// envelope), as Ceilometer and other consumers read them: a topic exchange (control_exchange, Glance's is
// `glance`), routing key `<topic>.<priority>`, the message as JSON. Sending never blocks or fails an API
// call: notifications wait in a bounded queue, are removed only once the broker confirmed them, and the
// oldest are dropped (and counted) when the queue is full while the broker is away.

export interface AmqpNotifierOptions {
  /** transport_url's hosts as amqp URLs (amqps with TLS), tried in turn. */
  urls: string[];
  /** TLS options of each broker connection ([oslo_messaging_rabbit] ssl and its files, read for each). */
  tls?: () => ConnectionOptions;
  exchange: string;
  topics: string[];
  /** messagingv2: the oslo.messaging 2.0 envelope; messaging: the bare message. */
  envelope: boolean;
  /** [oslo_messaging_rabbit] amqp_durable_queues: the exchange is durable, messages persistent. */
  durable: boolean;
  /** Arguments the notification queues are declared with (a quorum queue's type and limits). */
  queueArguments?: Record<string, string | number>;
  maxQueued: number;
  log: Logger;
}

const BATCH = 100;
const MAX_BACKOFF_MS = 30_000;

/** transport_url's query: options of [oslo_messaging_rabbit] that override the configuration's (oslo.messaging's ConfigOptsProxy). */
export function transportQuery(transportUrl: string): Record<string, string> {
  const q = transportUrl.indexOf('?');
  return q < 0 ? {} : Object.fromEntries(new URLSearchParams(transportUrl.slice(q + 1)));
}

/**
 * `rabbit://user:pass@host:port[,user:pass@host:port]/vhost[?query]` → one amqp (or, with TLS, amqps)
 * URL per host. A host without a port gets 5672, TLS or not, as oslo.messaging gives it.
 */
export function amqpUrls(transportUrl: string, tls = false): string[] {
  const m = /^(?:rabbit|amqp|kombu)(?:\+\w+)?:\/\/([^/?]*)(?:\/([^?]*))?(?:\?.*)?$/.exec(transportUrl.trim());
  if (!m) throw new Error(`transport_url '${withoutPasswords(transportUrl)}' is not rabbit://user:password@host:port/vhost`);
  const vhost = m[2] ?? '';
  return m[1]!.split(',').map((host) => {
    const hostPort = host.slice(host.lastIndexOf('@') + 1);
    const port = /:\d+$/.test(hostPort) ? '' : ':5672';
    return `${tls ? 'amqps' : 'amqp'}://${host}${port}${vhost === '' ? '' : `/${encodeURIComponent(decodeURIComponent(vhost))}`}`;
  });
}

/**
 * oslo.messaging's ssl_version (a Python ssl.PROTOCOL_* name) as the TLS versions a connection may use.
 * SSLv2 and SSLv3 are refused: no current TLS library speaks them.
 */
export function tlsVersions(sslVersion: string): Pick<ConnectionOptions, 'minVersion' | 'maxVersion'> {
  const only = (v: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2') => ({ minVersion: v, maxVersion: v });
  switch (sslVersion.trim().toLowerCase()) {
    case '':
    case 'sslv23':
      return {};
    case 'tlsv1':
      return only('TLSv1');
    case 'tlsv1_1':
      return only('TLSv1.1');
    case 'tlsv1_2':
      return only('TLSv1.2');
    default:
      throw new Error(`'${sslVersion}' is not one of TLSv1, TLSv1_1, TLSv1_2 and SSLv23`);
  }
}

/** oslo.messaging's timestamp: `str(datetime.utcnow())`. */
function osloTimestamp(iso: string): string {
  return iso
    .replace('T', ' ')
    .replace(/Z$/, '')
    .replace(/\.(\d{3})$/, '.$1000');
}

export class AmqpNotificationDriver implements NotificationDriver {
  private readonly queue: Array<{ routingKey: string; body: Buffer }> = [];
  /** Notifications given up because the queue was full while the broker was unreachable. */
  dropped = 0;
  private model: ChannelModel | null = null;
  private channel: ConfirmChannel | null = null;
  /** The routing keys whose queue was declared on this connection. */
  private readonly declared = new Set<string>();
  private pumping: Promise<void> | null = null;
  private retry: NodeJS.Timeout | null = null;
  private backoffMs = 500;
  private nextUrl = 0;
  private closed = false;
  private warned = false;

  constructor(private readonly opts: AmqpNotifierOptions) {}

  get depth(): number {
    return this.queue.length;
  }

  send(n: Notification): void {
    if (this.closed) return;
    const message = {
      message_id: crypto.randomUUID(),
      publisher_id: n.publisher_id,
      event_type: n.event_type,
      priority: n.priority,
      payload: n.payload,
      timestamp: osloTimestamp(n.timestamp),
      _unique_id: crypto.randomUUID().replace(/-/g, ''),
    };
    const text = JSON.stringify(this.opts.envelope ? { 'oslo.version': '2.0', 'oslo.message': JSON.stringify(message) } : message);
    for (const topic of this.opts.topics) {
      this.queue.push({ routingKey: `${topic}.${n.priority.toLowerCase()}`, body: Buffer.from(text) });
      if (this.queue.length > this.opts.maxQueued) {
        this.queue.shift();
        this.dropped++;
      }
    }
    this.pump();
  }

  private pump(): void {
    if (this.pumping || this.retry || this.closed) return;
    this.pumping = this.deliver().finally(() => (this.pumping = null));
  }

  /** Sends what is queued, in batches confirmed by the broker; on failure, tries again later. */
  private async deliver(): Promise<void> {
    try {
      while (this.queue.length && !this.closed) {
        const channel = this.channel ?? (await this.open());
        const batch = this.queue.slice(0, BATCH);
        for (const routingKey of new Set(batch.map((m) => m.routingKey))) await this.declareQueueOnce(routingKey);
        for (const m of batch) {
          channel.publish(this.opts.exchange, m.routingKey, m.body, {
            contentType: 'application/json',
            contentEncoding: 'utf-8',
            deliveryMode: this.opts.durable ? 2 : 1,
          });
        }
        await channel.waitForConfirms();
        this.queue.splice(0, batch.length);
        this.backoffMs = 500;
        this.warned = false;
      }
    } catch (err) {
      if (!this.warned) this.opts.log.warn({ err, queued: this.queue.length }, 'notifications cannot reach the message broker; they wait in memory');
      this.warned = true;
      this.drop();
      if (this.closed) return;
      this.retry = setTimeout(() => {
        this.retry = null;
        this.pump();
      }, this.backoffMs);
      this.retry.unref();
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    }
  }

  private async open(): Promise<ConfirmChannel> {
    const url = this.opts.urls[this.nextUrl++ % this.opts.urls.length]!;
    // Loaded when a transport is configured: about 2 MiB of every process that sends no notifications.
    const { connect } = await import('amqplib');
    const model = await connect(url, { timeout: 10_000, ...this.opts.tls?.() });
    model.on('error', () => {
      /* reported through the failed publish */
    });
    model.on('close', () => {
      if (this.model === model) this.drop();
    });
    const channel = await model.createConfirmChannel();
    channel.on('error', () => {
      /* reported through the failed publish */
    });
    await channel.assertExchange(this.opts.exchange, 'topic', { durable: this.opts.durable, autoDelete: false });
    this.model = model;
    this.channel = channel;
    return channel;
  }

  /**
   * As oslo.messaging does before its first notification of each routing key on a connection: a queue of
   * that name bound to the exchange, so that what is sent before any consumer exists (Ceilometer not yet
   * started, a new broker) waits there instead of being dropped by the broker, which confirms it all the
   * same. Declared on a channel of its own: a queue that exists with other arguments (a quorum queue an
   * operator made) is left as it is, with a warning, and publishing goes on.
   */
  private async declareQueueOnce(routingKey: string): Promise<void> {
    const model = this.model;
    if (!model || this.declared.has(routingKey)) return;
    const side = await model.createChannel();
    side.on('error', () => {
      /* reported below */
    });
    try {
      await side.assertQueue(routingKey, { durable: this.opts.durable, autoDelete: false, arguments: this.opts.queueArguments ?? {} });
      await side.bindQueue(routingKey, this.opts.exchange, routingKey);
    } catch (err) {
      this.opts.log.warn({ err, queue: routingKey }, 'the notification queue could not be declared; notifications are sent to the exchange all the same');
    } finally {
      await side.close().catch(() => {});
    }
    this.declared.add(routingKey);
  }

  private drop(): void {
    const model = this.model;
    this.model = null;
    this.channel = null;
    this.declared.clear();
    model?.close().catch(() => {});
  }

  /** Sends what is still queued (for at most `waitMs`), then closes the connection. */
  async close(waitMs = 2000): Promise<void> {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    if (this.queue.length) {
      this.pump();
      await Promise.race([this.pumping, new Promise((r) => setTimeout(r, waitMs).unref())]);
    }
    this.closed = true;
    await this.pumping?.catch(() => {});
    this.drop();
  }
}
