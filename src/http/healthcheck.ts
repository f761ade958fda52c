// /healthcheck as oslo.middleware's healthcheck answers it in front of Glance: any method; HEAD gets
// 204 (503 when unhealthy) and no body; the others the one reason as plain text, HTML or JSON, whichever
// the Accept header ranks first (plain text when it names none of them).

const OFFERS = ['text/plain', 'text/html', 'application/json'] as const;
type Offer = (typeof OFFERS)[number];

/** The offer the Accept header ranks first: highest q of its most specific matching range; ties keep the offers' order. */
function negotiate(accept: string | undefined): Offer {
  if (!accept?.trim()) return 'text/plain';
  const ranges = accept.split(',').map((part) => {
    const [range = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return { range, q: q ? Number(q.slice(2)) : 1 };
  });
  let best: { offer: Offer; q: number } | null = null;
  for (const offer of OFFERS) {
    const [type] = offer.split('/');
    const match = ranges.find((r) => r.range === offer) ?? ranges.find((r) => r.range === `${type}/*`) ?? ranges.find((r) => r.range === '*/*');
    if (match && match.q > 0 && (!best || match.q > best.q)) best = { offer, q: match.q };
  }
  return best?.offer ?? 'text/plain';
}

export function healthcheckBody(reason: string, accept: string | undefined): { contentType: string; body: string } {
  switch (negotiate(accept)) {
    case 'application/json':
      return { contentType: 'application/json', body: JSON.stringify({ detailed: false, reasons: [reason] }, null, 4) };
    case 'text/html':
      return {
        contentType: 'text/html; charset=UTF-8',
        body:
          '<HTML>\n<HEAD><TITLE>Healthcheck Status</TITLE></HEAD>\n<BODY>\n\n<H2>Result of 1 checks:</H2>\n' +
          '<TABLE bgcolor="#ffffff" border="1">\n<TBODY>\n<TR>\n\n<TH>\nReason\n</TH>\n</TR>\n<TR>\n\n' +
          `    <TD>${reason}</TD>\n\n</TR>\n</TBODY>\n</TABLE>\n<HR></HR>\n\n</BODY>\n</HTML>`,
      };
    default:
      return { contentType: 'text/plain; charset=UTF-8', body: reason };
  }
}
