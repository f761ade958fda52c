// A self-signed certificate for 127.0.0.1, made with the openssl command, for servers (HAProxy) a test
// puts TLS in front of.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface Certificate {
  /** The certificate (PEM): what a client trusts, as a CA file. */
  cert: string;
  key: string;
  /** Both in one PEM, as HAProxy's `crt` reads them. */
  pem: string;
}

export function selfSignedCertificate(): Certificate {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-cert-'));
  try {
    const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'];
    execFileSync('openssl', [...args, '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    const cert = readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    const key = readFileSync(path.join(dir, 'key.pem'), 'utf8');
    return { cert, key, pem: cert + key };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
