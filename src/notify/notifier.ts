// Glance's notification events (image.create, image.upload, task.*, …) through one small interface.

import type { Logger } from '../util/logger.ts';
import { clockNow } from '../domain/time.ts';

export interface Notification {
  event_type: string;
  priority: 'INFO' | 'ERROR';
  publisher_id: string;
  timestamp: string;
  payload: unknown;
}

export interface NotificationDriver {
  send(notification: Notification): void;
  /** Sends what is still waiting and lets go of connections (the service is stopping). */
  close?(): Promise<void>;
}

/** Each notification as one log line at its priority, as oslo.messaging's log driver writes them. */
export class LogNotificationDriver implements NotificationDriver {
  constructor(private readonly log: Logger) {}
  send(n: Notification): void {
    const fields = { notification: n.event_type, priority: n.priority, payload: n.payload };
    if (n.priority === 'ERROR') this.log.error(fields, n.event_type);
    else this.log.info(fields, n.event_type);
  }
}

export class Notifier {
  constructor(
    readonly drivers: NotificationDriver[],
    private readonly publisherId: string,
    private readonly disabled: string[] = [],
  ) {}

  async close(): Promise<void> {
    await Promise.all(this.drivers.map((d) => d.close?.()));
  }

  /** Whether any of these events would be sent: a caller may skip building a payload (or reading for it) otherwise. */
  sends(...eventTypes: string[]): boolean {
    return this.drivers.length > 0 && eventTypes.some((e) => !this.isDisabled(e));
  }

  info(eventType: string, payload: unknown): void {
    this.emit(eventType, 'INFO', payload);
  }
  error(eventType: string, payload: unknown): void {
    this.emit(eventType, 'ERROR', payload);
  }

  private isDisabled(eventType: string): boolean {
    const group = eventType.split('.')[0] ?? eventType;
    return this.disabled.includes(eventType) || this.disabled.includes(group);
  }

  private emit(eventType: string, priority: 'INFO' | 'ERROR', payload: unknown): void {
    if (this.isDisabled(eventType)) return;
    const n: Notification = { event_type: eventType, priority, publisher_id: this.publisherId, timestamp: clockNow().toISOString(), payload };
    for (const d of this.drivers) {
      try {
        d.send(n);
      } catch {
        /* a broken notifier must never fail the API call */
      }
    }
  }
}
