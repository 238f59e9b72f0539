import { connect, createServer, type Server, type Socket } from "node:net";
import { code, LifeboatError } from "../errors.ts";
import { type MysqlParams, serverOf } from "./mysql-connect.ts";

// Capability bits cleared in the server's greeting, so the dump tool speaks plain, uncompressed packets lifeboat can
// read (the relay is a socket in a private directory; the hop to the server is the relay's own).
const CLIENT_COMPRESS = 0x0020;
const CLIENT_SSL = 0x0800;
const UPPER_ZSTD = 0x0400; // CLIENT_ZSTD_COMPRESSION_ALGORITHM (1 << 26)
const UPPER_QUERY_ATTRIBUTES = 0x0800; // CLIENT_QUERY_ATTRIBUTES (1 << 27): would put bytes before the query text
const COM_QUERY = 0x03;
const START_TRANSACTION = /^\s*START\s+TRANSACTION\b/i;

/**
 * A relay between the dump tool and the server, for one session. It reads the server's greeting (the session's
 * connection id), holds the tool's START TRANSACTION until release(), and reports when the server acknowledged it,
 * i.e. when the dump's snapshot exists. After that it only pipes bytes. Only for plaintext sessions: the tool
 * connects to the relay's Unix socket with TLS off, and the relay connects to the server in plaintext.
 */
export interface DumpRelay {
  /** The Unix socket the tool connects to. */
  readonly socketPath: string;
  /** The server's CONNECTION_ID() of the relayed session, from its greeting. */
  readonly connectionId: Promise<number>;
  /** Resolves when the tool sent START TRANSACTION, which is now held; rejects if the session failed first. */
  readonly held: Promise<void>;
  /** Forwards the held START TRANSACTION; resolves once the server answered OK, rejects with its error otherwise. */
  release(): Promise<void>;
  /** Closes the listener and both sockets. Idempotent. */
  close(): void;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Starts listening on socketPath (inside a private directory) and relays the first session to the server. */
export async function openDumpRelay(socketPath: string, server: MysqlParams): Promise<DumpRelay> {
  const relay = new Relay(socketPath, server);
  await relay.listen();
  return relay;
}

class Relay implements DumpRelay {
  readonly #server: Server;
  readonly #id = deferred<number>();
  readonly #held = deferred<void>();
  readonly #answered = deferred<void>();
  #client?: Socket;
  #upstream?: Socket;
  #fromServer = Buffer.alloc(0);
  #fromClient = Buffer.alloc(0);
  #greeted = false;
  #firstClientPacket = true;
  #heldPacket?: Buffer;
  #awaitingAnswer = false;
  #closed = false;

  readonly socketPath: string;
  private readonly params: MysqlParams;

  constructor(socketPath: string, params: MysqlParams) {
    this.socketPath = socketPath;
    this.params = params;
    this.#server = createServer((socket) => this.#accept(socket));
    this.#server.on("error", (err) => this.#fail(err));
  }

  get connectionId(): Promise<number> {
    return this.#id.promise;
  }

  get held(): Promise<void> {
    return this.#held.promise;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.socketPath, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
  }

  release(): Promise<void> {
    const packet = this.#heldPacket;
    if (!packet || !this.#upstream) return Promise.reject(new Error("relay: nothing is held"));
    this.#heldPacket = undefined;
    this.#awaitingAnswer = true;
    this.#fromServer = Buffer.alloc(0);
    this.#upstream.write(packet);
    return this.#answered.promise;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    this.#client?.destroy();
    this.#upstream?.destroy();
    this.#fail(new Error("relay closed"));
  }

  #fail(err: Error): void {
    const e =
      err instanceof LifeboatError
        ? err
        : new LifeboatError(code.source, `mysql relay to ${serverOf(this.params)}: ${err.message}`, { cause: err });
    this.#id.reject(e);
    this.#held.reject(e);
    this.#answered.reject(e);
  }

  #accept(client: Socket): void {
    // One session only: the dump tool's. Anyone else is turned away.
    if (this.#client) {
      client.destroy();
      return;
    }
    this.#client = client;
    this.#server.close();
    const p = this.params;
    const upstream = p.socket ? connect({ path: p.socket }) : connect({ host: p.host, port: p.port });
    this.#upstream = upstream;
    upstream.setTimeout(p.connectTimeout * 1000, () => upstream.destroy(new Error(`no answer within ${p.connectTimeout} s`)));
    upstream.once("connect", () => upstream.setTimeout(0));
    client.on("error", () => {});
    upstream.on("error", (err) => this.#fail(err));
    client.on("close", () => {
      upstream.destroy();
      this.#fail(new Error("the dump tool closed its connection"));
    });
    upstream.on("close", () => {
      client.destroy();
      this.#fail(new Error("the server closed the connection"));
    });
    client.on("data", (chunk: Buffer) => this.#onClient(chunk));
    upstream.on("data", (chunk: Buffer) => this.#onServer(chunk));
  }

  #onServer(chunk: Buffer): void {
    const client = this.#client as Socket;
    if (!this.#greeted) {
      this.#fromServer = Buffer.concat([this.#fromServer, chunk]);
      const len = this.#fromServer.length >= 4 ? this.#fromServer.readUIntLE(0, 3) : -1;
      if (len < 0 || this.#fromServer.length < 4 + len) return;
      this.#greeted = true;
      const bytes = this.#fromServer;
      this.#fromServer = Buffer.alloc(0);
      this.#greeting(bytes.subarray(4, 4 + len));
      client.write(bytes);
      return;
    }
    if (this.#awaitingAnswer) {
      this.#fromServer = Buffer.concat([this.#fromServer, chunk]);
      client.write(chunk);
      this.#answer();
      return;
    }
    client.write(chunk);
  }

  /** Reads the connection id and clears TLS and compression from the capabilities, in place. */
  #greeting(payload: Buffer): void {
    if (payload[0] === 0xff) {
      // The server refused the session before any greeting (too many connections, host blocked); the tool reports it.
      this.#fail(new Error(`the server refused the session: ${payload.subarray(3).toString("utf8")}`));
      return;
    }
    const versionEnd = payload.indexOf(0, 1);
    const at = versionEnd + 1;
    if (payload[0] !== 10 || versionEnd < 0 || payload.length < at + 15) {
      this.#fail(new Error(`unexpected greeting (protocol ${payload[0]})`));
      return;
    }
    this.#id.resolve(payload.readUInt32LE(at));
    const lower = at + 4 + 8 + 1;
    payload.writeUInt16LE(payload.readUInt16LE(lower) & ~(CLIENT_COMPRESS | CLIENT_SSL), lower);
    const upper = lower + 2 + 1 + 2;
    if (payload.length >= upper + 2) {
      payload.writeUInt16LE(payload.readUInt16LE(upper) & ~(UPPER_ZSTD | UPPER_QUERY_ATTRIBUTES), upper);
    }
  }

  #onClient(chunk: Buffer): void {
    this.#fromClient = Buffer.concat([this.#fromClient, chunk]);
    // Frames packets until the START TRANSACTION is found; everything after it waits until it was answered.
    while (!this.#heldPacket && !this.#awaitingAnswer && this.#fromClient.length >= 4) {
      const total = 4 + this.#fromClient.readUIntLE(0, 3);
      if (this.#fromClient.length < total) return;
      const packet = this.#fromClient.subarray(0, total);
      this.#fromClient = this.#fromClient.subarray(total);
      if (this.#firstClientPacket) {
        this.#firstClientPacket = false;
        if (packet.length >= 8 && packet.readUInt32LE(4) & CLIENT_SSL) {
          this.#fail(new Error("the dump tool asked for TLS on the local relay; it must not"));
          this.close();
          return;
        }
      }
      if (packet[4] === COM_QUERY && START_TRANSACTION.test(packet.subarray(5, 69).toString("latin1"))) {
        this.#heldPacket = Buffer.from(packet);
        this.#held.resolve();
        return;
      }
      this.#upstream?.write(packet);
    }
  }

  /** Looks at the first packet after the released START TRANSACTION: OK (0x00) or ERR (0xff). */
  #answer(): void {
    const buf = this.#fromServer;
    if (buf.length < 5) return;
    this.#awaitingAnswer = false;
    if (buf[4] === 0x00) this.#answered.resolve();
    else {
      const len = buf.readUIntLE(0, 3);
      const text = buf.subarray(4, 4 + len);
      const message = buf[4] === 0xff && text.length > 9 ? text.subarray(9).toString("utf8") : `packet type 0x${buf[4]?.toString(16)}`;
      this.#answered.reject(new LifeboatError(code.source, `the dump tool's START TRANSACTION failed: ${message}`));
    }
    this.#fromServer = Buffer.alloc(0);
    this.#pipe();
  }

  /** From here on the relay only moves bytes, with backpressure. */
  #pipe(): void {
    const client = this.#client as Socket;
    const upstream = this.#upstream as Socket;
    // Swapped in one synchronous step, so no chunk is emitted while neither listener is attached.
    client.removeAllListeners("data");
    upstream.removeAllListeners("data");
    if (this.#fromClient.length) upstream.write(this.#fromClient);
    this.#fromClient = Buffer.alloc(0);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
