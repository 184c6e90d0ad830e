// haproxy (Debian's package) in front of several issod nodes, as the
// cluster test and `make bench-scale` run it: in the foreground as a child
// of the caller, its configuration written to dir; round robin, no
// stickiness, a new connection per request (so consecutive requests of
// one client alternate between the nodes), health checks on /readyz.
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, waitReady, sleep } from './harness.mjs';

export const HAPROXY = '/usr/sbin/haproxy';

/**
 * Starts haproxy on 127.0.0.1:port in front of servers ([{name, port}]);
 * resolves once it answers /readyz and every server has passed two
 * checks. opts.keepAlive: reuse connections to the servers (a benchmark's
 * setting; the tests close each one so that requests alternate).
 */
export async function startHaproxy({ dir, port, servers, keepAlive = false }) {
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, [
    'global',
    '    maxconn 2048',
    'defaults',
    '    mode http',
    '    timeout connect 2s',
    '    timeout client 30s',
    '    timeout server 30s',
    '    option forwardfor',
    keepAlive ? '    option http-keep-alive' : '    option httpclose',
    '    retries 3',
    '    option redispatch 1',
    '    retry-on conn-failure empty-response',
    'frontend isso',
    `    bind 127.0.0.1:${port}`,
    '    default_backend issod',
    'backend issod',
    '    balance roundrobin',
    '    option httpchk',
    '    http-check send meth GET uri /readyz',
    '    http-check expect status 200',
    '    default-server inter 300ms fall 2 rise 2 on-marked-down shutdown-sessions',
    ...servers.map((s) => `    server ${s.name} 127.0.0.1:${s.port} check`),
    '',
  ].join('\n'));
  const lb = new Daemon('haproxy', HAPROXY, ['-db', '-f', file], { env: { PATH: '/usr/bin:/bin' }, cwd: dir });
  await waitReady(lb, `http://127.0.0.1:${port}/readyz`);
  await sleep(1000); // every server up after two checks
  return lb;
}
