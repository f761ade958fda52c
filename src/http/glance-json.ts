import type { FastifyReply } from 'fastify';
// JSON text as Glance writes it: Python's json.dumps, whose default separators put a space after every
// ',' and ':' between items. Its resource serializers (images, members, tasks, metadefs) leave
// characters beyond ASCII as they are; its generic one (schemas, info, versions, errors) escapes them.
// The same text byte for byte, and so the same Content-Length as Glance.

/** `value` as Glance's resource serializers write it: json.dumps(value, ensure_ascii=False). */
export function glanceJson(value: unknown): string {
  return withPythonSeparators(JSON.stringify(value) ?? 'null');
}

/** `value` as Glance's generic serializer writes it: json.dumps(value), everything beyond ASCII as \uXXXX. */
export function glanceAsciiJson(value: unknown): string {
  return escapeNonAscii(glanceJson(value));
}

/** JSON text with every character beyond ASCII written as \uXXXX (UTF-16 units, as Python's ensure_ascii). */
function escapeNonAscii(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;

/**
 * Compact JSON text (JSON.stringify's) with a space after each separator outside strings. Strings are
 * skipped with indexOf: on a page of a thousand images this adds about a fifth to the stringify's time.
 */
function withPythonSeparators(compact: string): string {
  const parts: string[] = [];
  let from = 0;
  for (let i = 0; i < compact.length; i++) {
    const c = compact.charCodeAt(i);
    if (c === QUOTE) i = closingQuote(compact, i);
    else if (c === COMMA || c === COLON) {
      parts.push(compact.slice(from, i + 1));
      from = i + 1;
    }
  }
  parts.push(compact.slice(from));
  return parts.join(' ');
}

/** Where the string opened at `open` ends: the next quote not escaped by an odd run of backslashes. */
function closingQuote(text: string, open: number): number {
  let at = open;
  for (;;) {
    at = text.indexOf('"', at + 1);
    if (at === -1) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/** Sends `value` as Glance's generic serializer answers (schemas, discovery). */
export function sendAsciiJson(reply: FastifyReply, value: unknown): FastifyReply {
  return reply.header('content-type', 'application/json').send(glanceAsciiJson(value));
}
