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

/**
 * Each notification as one log line at its priority, as oslo.messaging's log driver writes them: with
 * the values of secret-looking keys (`password`, `admin_pass`, `token`, … anywhere in an object) as ***.
 */
export class LogNotificationDriver implements NotificationDriver {
  constructor(private readonly log: Logger) {}
  send(n: Notification): void {
    const fields = { notification: n.event_type, priority: n.priority, payload: maskSecrets(n.payload) };
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

// oslo.utils' _SANITIZE_KEYS: a key holding any of them (in any case) names a secret.
const SECRET_KEYS = [
  'adminpass',
  'admin_pass',
  'password',
  'admin_password',
  'auth_token',
  'new_pass',
  'auth_password',
  'secret_uuid',
  'secret',
  'sys_pswd',
  'token',
  'configdrive',
  'chappassword',
  'encrypted_key',
  'private_key',
  'fernetkey',
  'sslkey',
  'passphrase',
  'cephclusterfsid',
  'octaviaheartbeatkey',
  'rabbitcookie',
  'cephmanilaclientkey',
  'pacemakerremoteauthkey',
  'designaterndckey',
  'cephadminkey',
  'heatauthencryptionkey',
  'cephclientkey',
  'keystonecredential',
  'barbicansimplecryptokek',
  'cephrgwkey',
  'swifthashsuffix',
  'migrationsshkey',
  'cephmdskey',
  'cephmonkey',
];

/** oslo.utils' mask_dict_password: objects are copied with secret keys' values as ***, recursively. */
export function maskSecrets(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => {
      // An object is masked within, whatever its key (as oslo.utils does).
      if (inner !== null && typeof inner === 'object' && !Array.isArray(inner)) return [key, maskSecrets(inner)];
      const lower = key.toLowerCase();
      return [key, SECRET_KEYS.some((secret) => lower.includes(secret)) ? '***' : inner];
    }),
  );
}
