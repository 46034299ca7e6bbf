import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const KEY = '-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes';

/** Throwaway certificates made by {@link createTlsCertificates}. */
export interface TlsCertificates {
  /** For a TLS server on 127.0.0.1 / localhost that requires client certificates signed by `ca`. */
  server: { ca: Buffer; cert: Buffer; key: Buffer };
  /** A DOCKER_CERT_PATH directory (ca.pem, cert.pem, key.pem) whose client certificate the CA signed. */
  goodCertPath: string;
  /** The same, but the client certificate is signed by another CA (ca.pem still trusts the server). */
  badCertPath: string;
}

/** Creates a CA, a server and two client certificates with the openssl CLI in `dir` (which must exist). */
export async function createTlsCertificates(dir: string): Promise<TlsCertificates> {
  // No argument has a space; a missing openssl binary rejects with the command that failed.
  const openssl = (command: string) =>
    execFileAsync('openssl', command.split(' '), { cwd: dir, timeout: 30_000 }).catch((error: unknown) => {
      const stderr = (error as { stderr?: string }).stderr;
      throw new Error(`openssl ${command} failed: ${stderr || error}`, { cause: error });
    });
  const newCa = (ca: string) =>
    openssl(`req -x509 ${KEY} -keyout ${ca}-key.pem -out ${ca}.pem -days 1 -subj /CN=${ca}`);
  const newLeaf = async (name: string, ca: string, cn: string, extensions: string) => {
    await writeFile(join(dir, `${name}.ext`), extensions);
    await openssl(`req -new ${KEY} -keyout ${name}-key.pem -out ${name}.csr -subj /CN=${cn}`);
    await openssl(
      `x509 -req -in ${name}.csr -CA ${ca}.pem -CAkey ${ca}-key.pem -days 1 -out ${name}.pem -extfile ${name}.ext`,
    );
  };
  const read = (file: string) => readFile(join(dir, file));
  /** A DOCKER_CERT_PATH directory as the docker CLI expects it. */
  const certDir = async (name: string, client: string) => {
    const path = join(dir, name);
    await mkdir(path);
    await writeFile(join(path, 'ca.pem'), await read('ca.pem'));
    await writeFile(join(path, 'cert.pem'), await read(`${client}.pem`));
    await writeFile(join(path, 'key.pem'), await read(`${client}-key.pem`));
    return path;
  };

  await Promise.all([newCa('ca'), newCa('rogue-ca')]);
  await Promise.all([
    newLeaf(
      'server',
      'ca',
      '127.0.0.1',
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
    ),
    newLeaf('client', 'ca', 'client', 'extendedKeyUsage=clientAuth\n'),
    newLeaf('rogue-client', 'rogue-ca', 'client', 'extendedKeyUsage=clientAuth\n'),
  ]);
  return {
    server: { ca: await read('ca.pem'), cert: await read('server.pem'), key: await read('server-key.pem') },
    goodCertPath: await certDir('good', 'client'),
    badCertPath: await certDir('bad', 'rogue-client'),
  };
}
