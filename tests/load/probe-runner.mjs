// Runs the probes of an attack test in a process of its own, so that what they measure is the proxy, not
// the event loop of the test process, which also drives the attackers' hundreds of sockets. Argument: JSON
// { baseUrl, rounds: [[path, ...], ...], intervalMs, timeoutMs }. Round i starts at i * intervalMs; its paths
// are asked at once, each on a connection of its own. Prints one JSON array: per round, per path,
// { status, ms, error? }.
import { request } from 'node:http';

const { baseUrl, rounds, intervalMs, timeoutMs } = JSON.parse(process.argv[2] ?? '{}');

function probe(path) {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...result, ms: Math.round(performance.now() - started) });
    };
    const req = request(`${baseUrl}/`, { agent: false });
    req.path = path;
    const timer = setTimeout(() => {
      done({ status: 0, error: `timeout after ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (error) => done({ status: 0, error: error.message }));
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => done({ status: res.statusCode ?? 0 }));
      res.on('error', (error) => done({ status: res.statusCode ?? 0, error: error.message }));
    });
    req.end();
  });
}

const results = await Promise.all(
  rounds.map(async (paths, i) => {
    await new Promise((resolve) => setTimeout(resolve, i * intervalMs));
    return Promise.all(paths.map((path) => probe(path)));
  }),
);
process.stdout.write(JSON.stringify(results));
