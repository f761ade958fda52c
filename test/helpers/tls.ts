// Certificates for 127.0.0.1, made with the openssl command, for servers (HAProxy, RabbitMQ) a test puts
// TLS in front of: a self-signed one, or a throw-away CA with certificates it signed.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

export interface CertificateAuthority {
  /** The CA's certificate (PEM): what both sides trust. */
  ca: string;
  /** A certificate for 127.0.0.1 signed by the CA, for servers and for clients. */
  server: Certificate;
  client: Certificate;
}

/**
 * A throw-away CA and two certificates it signed, for peers that refuse a self-signed certificate as
 * the other side's (Erlang's TLS, RabbitMQ's, does).
 */
export function certificateAuthority(): CertificateAuthority {
  const dir = mkdtempSync(path.join(tmpdir(), 'gaze-ca-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  try {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=Gaze test CA', '-keyout', file('ca.key'), '-out', file('ca.pem'));
    writeFileSync(file('leaf.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
    const issue = (name: string): Certificate => {
      openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=127.0.0.1`, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`));
      const sign = ['-req', '-in', file(`${name}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '1'];
      openssl('x509', ...sign, '-extfile', file('leaf.ext'), '-out', file(`${name}.pem`));
      const cert = readFileSync(file(`${name}.pem`), 'utf8');
      const key = readFileSync(file(`${name}.key`), 'utf8');
      return { cert, key, pem: cert + key };
    };
    return { ca: readFileSync(file('ca.pem'), 'utf8'), server: issue('server'), client: issue('client') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
