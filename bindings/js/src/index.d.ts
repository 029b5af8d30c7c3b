// SPDX-License-Identifier: Apache-2.0
// Types of @enclavia/client (src/index.js).

/** The C ABI's status names (enclavia_status_name). */
export type Status =
  | "invalid_argument" | "malformed" | "verify_failed" | "untrusted" | "expired"
  | "policy_violation" | "limit_exceeded" | "not_found" | "already_exists" | "unsupported"
  | "io" | "failed_precondition" | "internal" | "unavailable";

/** Every failure the core reports: `status` names it, `message` is one line. */
export class EnclaviaError extends Error {
  readonly name: "EnclaviaError";
  readonly status: Status;
  constructor(status: Status, message: string);
}

export type Bytes = Uint8Array | ArrayBuffer | ArrayBufferView;

/** What the enclave proved: a verified attestation document (and upgrade chain). */
export interface Attestation {
  /** pcrs[i] is PCR i (48 bytes); undefined for a PCR the document lacks. */
  readonly pcrs: ReadonlyArray<Uint8Array | undefined>;
  readonly moduleId: string;
  readonly timestamp: Date;
  readonly publicKey: Uint8Array | null;
  readonly userData: Uint8Array | null;
  /** Activated upgrades of the verified chain (0 when unchained). */
  readonly upgrades: number;
  /** The chain's genesis hash (32 bytes), null for an unchained enclave. */
  readonly genesis: Uint8Array | null;
}

/** A parsed trust policy (docs/trust-file.md). */
export class Trust {
  /** Parses a trust file's TOML; root PEM files it names are given by `files` (name → PEM). */
  static parse(toml: string, options?: { files?: Record<string, string | Uint8Array> }): Promise<Trust>;
  /** Fixes the clock documents are checked against (null or 0: the system clock). */
  setTime(at: Date | number | null): void;
  /** Frees the policy now (otherwise when garbage-collected). */
  free(): void;
}

export interface VerifyOptions {
  /** The enclave's upgrade chain entries (COSE), in order. */
  chain?: Bytes[];
  /** 32 bytes the document's public_key must equal. */
  publicKey?: Bytes | string;
  /** 32 bytes the document's nonce must equal (required by a policy with fresh = true). */
  nonce?: Bytes | string;
  /** Verify as of this time instead of now. */
  at?: Date | number;
}

/** Checks an attestation document (COSE_Sign1) against `trust` as a handshake does; throws EnclaviaError. */
export function verifyAttestation(document: Bytes, trust: Trust, options?: VerifyOptions): Promise<Attestation>;

/** Replays the client side of a recorded handshake (conformance vectors only). */
export function replayHandshake(trust: Trust, ephemeral: Bytes | string, message2: Bytes | string,
                                options?: { at?: Date | number }): Promise<Attestation>;

/** A byte stream to one TCP port of the enclave. */
export class Stream {
  readonly id: number;
  readonly port: number;
  /** Resolves once all bytes are queued within the send window (waits for credit: backpressure). */
  write(data: Bytes | string): Promise<void>;
  /** The next bytes, or null at the end of the stream. Returning credit to the enclave happens here. */
  read(): Promise<Uint8Array | null>;
  /** Reads to the end of the stream. */
  readAll(): Promise<Uint8Array>;
  /** Half-closes: the enclave application sees the end of its input. */
  closeWrite(): void;
  /** Resets the stream if still open and releases it. */
  close(): void;
}

export interface FetchOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Bytes | string;
}

export interface FetchResponse {
  status: number;
  statusText: string;
  /** Lowercased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Uint8Array;
  text(): string;
  json(): unknown;
}

/** An attested, end-to-end encrypted channel to an enclave. */
export class Channel {
  /** What the enclave proved during the handshake. */
  readonly attestation: Attestation;
  /** Resolves with the error that ended the channel. */
  readonly closed: Promise<EnclaviaError>;
  openStream(port: number): Promise<Stream>;
  /** One HTTP/1.1 request over a new stream to `port` (Connection: close). */
  fetch(port: number, path: string, options?: FetchOptions): Promise<FetchResponse>;
  close(): void;
}

export interface ConnectOptions {
  /** A WebSocket constructor (default: globalThis.WebSocket). */
  WebSocket?: typeof WebSocket;
  /** Handshake deadline, default 30000. */
  timeoutMs?: number;
}

/** Dials ws:// or wss://, runs the attested handshake; resolves only if the attestation satisfies `trust`. */
export function connect(url: string, trust: Trust, options?: ConnectOptions): Promise<Channel>;

/** A conformance vector (tests/conformance/README.md). */
export interface ConformanceCase {
  name: string;
  kind: "attestation" | "handshake";
  trust: string;
  files?: Record<string, string>;
  at_ms: number;
  document?: string;
  document_fixture?: string;
  chain?: string[];
  public_key?: string | null;
  nonce?: string | null;
  ephemeral?: string;
  message2?: string;
  expect: string;
  expect_pcr0?: string;
}

/** Runs one vector through the core: "ok", a status name, or "pcr0_mismatch". */
export function runConformanceCase(
  c: ConformanceCase,
  fixtures?: Record<string, Bytes | string> | ((name: string) => Bytes | string | Promise<Bytes | string>),
): Promise<string>;

/** Options for loading the wasm module, before first use (e.g. `locateFile` for bundlers). */
export function configureCore(options: { locateFile?: (path: string, dir: string) => string; wasmBinary?: ArrayBuffer | Uint8Array }): void;

export function hexToBytes(hex: string): Uint8Array;
export function bytesToHex(bytes: Uint8Array): string;
