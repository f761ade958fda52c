import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/index.ts';
import {
  addressPassesFilter,
  canonicalAddress,
  canonicalHostEntry,
  checkUri,
  passesUriFilter,
  uriFilterFromConfig,
  type UriFilterOptions,
} from '../../src/net/uri-filter.ts';

// Glance's defaults, and its list semantics: most tests here check those, without any refusal of
// internal or loopback addresses (which have tests of their own below).
const DEFAULTS: UriFilterOptions = {
  allowedSchemes: ['http', 'https'],
  disallowedSchemes: [],
  allowedHosts: [],
  disallowedHosts: [],
  allowedPorts: [80, 443],
  disallowedPorts: [],
  refuseInternal: false,
  trustedEndpoint: true,
};

function filter(overrides: Partial<UriFilterOptions>): UriFilterOptions {
  return { ...DEFAULTS, ...overrides };
}

function table(opts: UriFilterOptions, rows: Array<[string | null | undefined, boolean]>): void {
  for (const [uri, expected] of rows) {
    assert.equal(
      passesUriFilter(uri, opts),
      expected,
      `${JSON.stringify(uri)} should ${expected ? 'pass' : 'be refused'}: ${JSON.stringify(checkUri(uri, opts))}`,
    );
  }
}

test('uriFilterFromConfig reads [import_filtering_opts] with Glance defaults, and Gaze refuses internal addresses by default', () => {
  const { trustedEndpoint: _trusted, ...glanceDefaults } = DEFAULTS;
  assert.deepEqual(uriFilterFromConfig(loadConfig(undefined, {})), { ...glanceDefaults, refuseInternal: true });
  assert.equal(uriFilterFromConfig(loadConfig(undefined, {}, { import_filtering_opts: { refuse_internal_addresses: 'false' } })).refuseInternal, false);
  const config = loadConfig(
    undefined,
    {},
    {
      import_filtering_opts: {
        allowed_schemes: 'https',
        disallowed_schemes: 'ftp, gopher',
        allowed_hosts: 'images.example.com',
        disallowed_hosts: '169.254.169.254,localhost',
        allowed_ports: '',
        disallowed_ports: '22, 25',
      },
    },
  );
  assert.deepEqual(uriFilterFromConfig(config), {
    allowedSchemes: ['https'],
    disallowedSchemes: ['ftp', 'gopher'],
    allowedHosts: ['images.example.com'],
    disallowedHosts: ['169.254.169.254', 'localhost'],
    allowedPorts: [],
    disallowedPorts: [22, 25],
    refuseInternal: true,
  });
});

test('defaults: http and https on any host, explicit ports only 80 and 443', () => {
  table(DEFAULTS, [
    ['http://images.example.com/cirros.img', true],
    ['https://images.example.com/cirros.img', true],
    ['HTTP://Images.Example.COM/x', true],
    ['http://images.example.com:80/x', true],
    ['https://images.example.com:443/x', true],
    ['http://images.example.com:443/x', true],
    ['http://images.example.com:8080/x', false],
    ['https://images.example.com:8443/x', false],
    ['http://images.example.com:0/x', false],
    ['http://127.0.0.1/x', true], // Glance's defaults do not refuse any host
    ['http://images.example.com:/x', true], // an empty port is no port
  ]);
});

test('no URI, no scheme, no host: refused', () => {
  table(DEFAULTS, [
    [null, false],
    [undefined, false],
    ['', false],
    ['images.example.com/x', false],
    ['//images.example.com/x', false],
    ['http://', false],
    ['http:///x', false], // WHATWG would read host "x"; Glance sees no host
    ['http:/x', false],
    ['http:\\\\x\\y', false],
    ['http://a\\@b.example/', false],
    ['not a uri', false],
  ]);
});

test('schemes: allow-list, deny-list, allow-list wins when both are set', () => {
  table(DEFAULTS, [
    ['file:///etc/passwd', false],
    ['ftp://ftp.example.com/x', false],
    ['gopher://gopher.example.com/x', false],
    ['data:text/plain,hello', false],
    ['javascript:alert(1)', false],
  ]);
  const denyOnly = filter({ allowedSchemes: [], disallowedSchemes: ['ftp', 'file'] });
  table(denyOnly, [
    ['http://h.example/x', true],
    ['gopher://h.example/x', true],
    ['ftp://h.example/x', false],
    ['FTP://h.example/x', false],
    ['file:///etc/passwd', false],
  ]);
  const both = filter({ allowedSchemes: ['https'], disallowedSchemes: ['https', 'http'] });
  table(both, [
    ['https://h.example/x', true], // the deny-list is ignored
    ['http://h.example/x', false], // not in the allow-list
  ]);
  const noLists = filter({ allowedSchemes: [], disallowedSchemes: [] });
  table(noLists, [
    ['gopher://h.example/x', true],
    ['file:///etc/passwd', false /* no host */],
  ]);
});

test('hosts: allow-list, deny-list, allow-list wins when both are set', () => {
  const allow = filter({ allowedHosts: ['images.example.com', '192.0.2.10'] });
  table(allow, [
    ['http://images.example.com/x', true],
    ['http://IMAGES.example.com./x', true],
    ['http://other.example.com/x', false],
    ['http://192.0.2.10/x', true],
    ['http://3221225994/x', true], // 192.0.2.10 as one number
    ['http://192.0.2.11/x', false],
    ['http://images.example.com.evil.example/x', false],
  ]);
  const deny = filter({ disallowedHosts: ['localhost', '127.0.0.1', '::1', '169.254.169.254'] });
  table(deny, [
    ['http://images.example.com/x', true],
    ['http://localhost/x', false],
    ['http://LocalHost./x', false],
    ['http://%6c%6fcalhost/x', false],
    ['http://127.0.0.1/x', false],
    ['http://127.0.0.2/x', true], // a deny-list names addresses, not networks
    ['http://[::1]/x', false],
    ['http://[0:0:0:0:0:0:0:1]/x', false],
    ['http://169.254.169.254/latest/meta-data/', false],
    ['http://user:pw@169.254.169.254/x', false],
  ]);
  const both = filter({ allowedHosts: ['127.0.0.1'], disallowedHosts: ['127.0.0.1'] });
  table(both, [
    ['http://127.0.0.1/x', true],
    ['http://images.example.com/x', false],
  ]);
});

test('encoded IPv4 and IPv6 spellings are compared in canonical form', () => {
  const deny = filter({ disallowedHosts: ['127.0.0.1', '169.254.169.254'] });
  const spellings = [
    'http://127.0.0.1/',
    'http://0x7f.1/',
    'http://0x7f000001/',
    'http://2130706433/',
    'http://017700000001/',
    'http://0177.0.0.1/',
    'http://127.1/',
    'http://127.0.1/',
    'http://127.0.0.1./',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[0:0:0:0:0:ffff:127.0.0.1]/',
    'http://%31%32%37.0.0.1/',
    'http://１２７.０.０.１/',
    'http://169.254.43518/',
    'http://0xa9fea9fe/',
  ];
  for (const uri of spellings) assert.equal(passesUriFilter(uri, deny), false, uri);
  // and the list entries themselves may be written in any spelling
  const denyOdd = filter({ disallowedHosts: ['0x7f.1', '[::1]', '0:0:0:0:0:0:0:1', '::FFFF:10.0.0.1', 'Metadata.Internal.'] });
  table(denyOdd, [
    ['http://127.0.0.1/', false],
    ['http://[::1]/', false],
    ['http://10.0.0.1/', false],
    ['http://metadata.internal/', false],
    ['http://10.0.0.2/', true],
  ]);
});

test('ports: checked only when the URI has an explicit port; allow-list wins when both are set', () => {
  table(DEFAULTS, [
    ['http://h.example/x', true],
    ['http://h.example:8080/x', false],
    ['http://h.example:0080/x', true],
    ['http://[::1]:80/x', true],
    ['http://[::1]:8080/x', false],
    ['http://user:pass@h.example:8080/x', false],
    ['http://user:pass@h.example/x', true],
  ]);
  const only8080 = filter({ allowedPorts: [8080] });
  table(only8080, [
    ['http://h.example:8080/x', true],
    ['http://h.example/x', true], // no explicit port: not checked (Glance)
    ['http://h.example:80/x', false], // explicit default port: checked (Glance)
    ['https://h.example:443/x', false],
  ]);
  const deny = filter({ allowedPorts: [], disallowedPorts: [22, 6379, 80] });
  table(deny, [
    ['http://h.example:8080/x', true],
    ['http://h.example:22/x', false],
    ['http://h.example:6379/x', false],
    ['http://h.example:80/x', false],
    ['http://h.example/x', true],
  ]);
  const both = filter({ allowedPorts: [8080], disallowedPorts: [8080] });
  table(both, [
    ['http://h.example:8080/x', true],
    ['http://h.example:9090/x', false],
  ]);
  const none = filter({ allowedPorts: [], disallowedPorts: [] });
  table(none, [
    ['http://h.example:1/x', true],
    ['http://h.example:65535/x', true],
    ['http://h.example:65536/x', false],
  ]);
});

test('checkUri explains the refusal and returns the parsed URL', () => {
  const ok = checkUri('http://0x7f.1:80/a/../b', DEFAULTS);
  assert.ok(ok.ok);
  assert.equal(ok.url.href, 'http://127.0.0.1/b');
  assert.equal(ok.host, '127.0.0.1');
  assert.equal(ok.port, 80);
  const refused = checkUri('http://h.example:8080/', DEFAULTS);
  assert.ok(!refused.ok);
  assert.match(refused.reason, /port 8080/);
});

test('canonical forms of list entries and addresses', () => {
  assert.equal(canonicalHostEntry(' Host.Example. '), 'host.example');
  assert.equal(canonicalHostEntry('2130706433'), '127.0.0.1');
  assert.equal(canonicalHostEntry('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(canonicalHostEntry('10.0.0.0/8'), '10.0.0.0/8'); // not a host: kept as written
  assert.equal(canonicalHostEntry('h.example:80'), 'h.example:80');
  assert.equal(canonicalAddress('::1'), '::1');
  assert.equal(canonicalAddress('0:0:0:0:0:0:0:1'), '::1');
  assert.equal(canonicalAddress('::ffff:169.254.169.254'), '169.254.169.254');
  assert.equal(canonicalAddress('not-an-ip'), null);
});

test('resolved addresses: the deny-list names addresses, a listed name allows its addresses', () => {
  const deny = filter({ disallowedHosts: ['127.0.0.1', '::1', 'localhost'] });
  assert.equal(addressPassesFilter('127.0.0.1', 'innocent.example', deny), false);
  assert.equal(addressPassesFilter('::ffff:127.0.0.1', 'innocent.example', deny), false);
  assert.equal(addressPassesFilter('0:0::1', 'innocent.example', deny), false);
  assert.equal(addressPassesFilter('192.0.2.1', 'innocent.example', deny), true);
  assert.equal(addressPassesFilter('not-an-ip', 'innocent.example', deny), false);

  const allowNames = filter({ allowedHosts: ['images.example.com'] });
  assert.equal(addressPassesFilter('192.0.2.1', 'images.example.com', allowNames), true);
  assert.equal(addressPassesFilter('127.0.0.1', 'images.example.com', allowNames), true); // the operator trusts the name
  assert.equal(addressPassesFilter('192.0.2.1', 'other.example.com', allowNames), false);

  const allowAddress = filter({ allowedHosts: ['192.0.2.1'] });
  assert.equal(addressPassesFilter('192.0.2.1', '192.0.2.1', allowAddress), true);
  assert.equal(addressPassesFilter('::ffff:192.0.2.1', '[::ffff:c000:201]', allowAddress), true);
  assert.equal(addressPassesFilter('192.0.2.2', 'x.example', allowAddress), false);

  // allow-list wins: the deny-list is ignored
  const both = filter({ allowedHosts: ['images.example.com'], disallowedHosts: ['127.0.0.1'] });
  assert.equal(addressPassesFilter('127.0.0.1', 'images.example.com', both), true);
});

test('internal addresses are refused by default, in every spelling, unless allowed_hosts lists them', () => {
  const gaze = filter({ refuseInternal: true, allowedPorts: [] });
  table(gaze, [
    ['http://169.254.169.254/latest/meta-data/', false],
    ['http://127.0.0.1/', false],
    ['http://127.8.9.10/', false],
    ['http://[::1]/', false],
    ['http://2130706433/', false],
    ['http://0x7f000001/', false],
    ['http://0177.0.0.1/', false],
    ['http://0/', false],
    ['http://0.0.0.0/', false],
    ['http://[::]/', false],
    ['http://[::ffff:7f00:1]/', false],
    ['http://[::ffff:169.254.169.254]/', false],
    ['http://10.0.0.1/', false],
    ['http://172.16.5.4/', false],
    ['http://192.168.1.1/', false],
    ['http://100.64.0.1/', false],
    ['http://[fd00::1]/', false],
    ['http://[fe80::1]/', false],
    ['http://224.0.0.1/', false],
    ['http://[ff02::1]/', false],
    ['http://240.0.0.1/', false],
    ['http://255.255.255.255/', false],
    ['http://198.18.0.1/', false],
    ['http://[64:ff9b::a00:1]/', false], // NAT64 of 10.0.0.1
    ['http://[2002:7f00:1::]/', false], // 6to4 of 127.0.0.1
    ['http://93.184.215.14/', true],
    ['http://[2606:4700::6810:84e5]/', true],
    ['http://images.example.com/', true], // names are judged by what they resolve to
  ]);
  table(filter({ refuseInternal: true, allowedPorts: [], allowedHosts: ['127.0.0.1'] }), [
    ['http://127.0.0.1/', true],
    ['http://[::1]/', false],
    ['http://93.184.215.14/', false],
  ]);
  table(filter({ refuseInternal: true, allowedPorts: [], allowedHosts: ['10.0.0.0/8', 'fd00::/8'] }), [
    ['http://10.20.30.40/', true],
    ['http://[fd00::5]/', true],
    ['http://11.0.0.1/', false],
    ['http://192.168.1.1/', false],
  ]);

  assert.equal(addressPassesFilter('169.254.169.254', 'innocent.example', gaze), false);
  assert.equal(addressPassesFilter('::ffff:10.0.0.1', 'innocent.example', gaze), false);
  assert.equal(addressPassesFilter('93.184.215.14', 'innocent.example', gaze), true);
  assert.equal(addressPassesFilter('127.0.0.1', 'files.internal', filter({ refuseInternal: true, allowedHosts: ['files.internal'] })), true);
  assert.equal(addressPassesFilter('10.9.8.7', 'files.internal', filter({ refuseInternal: true, allowedHosts: ['10.9.0.0/16'] })), true);
  assert.equal(addressPassesFilter('10.10.8.7', 'files.internal', filter({ refuseInternal: true, allowedHosts: ['10.9.0.0/16'] })), false);
});

test('refuse_internal_addresses = false: loopback and link-local stay refused, as Glance 25 refuses them; private networks pass', () => {
  const glance = filter({ refuseInternal: false, trustedEndpoint: false });
  table(glance, [
    ['http://127.0.0.1/', false],
    ['http://127.1/', false],
    ['http://2130706433/', false],
    ['http://[::1]/', false],
    ['http://[::ffff:127.0.0.1]/', false],
    ['http://[::ffff:0:127.0.0.1]/', false],
    ['http://169.254.169.254/latest/meta-data/', false],
    ['http://[fe80::1]/', false],
    ['http://0.0.0.0/', false],
    ['http://[::]/', false],
    ['http://10.1.2.3/', true],
    ['http://192.168.1.1/', true],
    ['http://images.example.com/', true],
  ]);
  assert.equal(addressPassesFilter('127.0.0.1', 'localhost', glance), false);
  assert.equal(addressPassesFilter('169.254.169.254', 'metadata.internal', glance), false);
  assert.equal(addressPassesFilter('10.0.0.5', 'files.internal', glance), true);
  // allowed_hosts still lets a loopback server through, as in Glance.
  assert.equal(passesUriFilter('http://127.0.0.1/', { ...glance, allowedHosts: ['127.0.0.1'] }), true);
  assert.equal(addressPassesFilter('127.0.0.1', 'localhost', { ...glance, allowedHosts: ['localhost'] }), true);
  // The IPv4-translated form is internal under the default refusal too.
  assert.equal(passesUriFilter('http://[::ffff:0:127.0.0.1]/', filter({ refuseInternal: true, trustedEndpoint: false })), false);
});
