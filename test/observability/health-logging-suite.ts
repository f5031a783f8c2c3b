// The same checks of health(), the `logger` option and the arbitrator's observability events
// (session, elected, ended) on each arbitrator: they are implemented once in core's
// QueueArbitrator, and this suite shows every adapter gets them.

import {
  type Arbitrator,
  type EndReason,
  InvalidArgumentError,
  type Logger,
  type SessionEvent,
} from '@tenure/core';
import { nextEvent, Timing, waitFor } from '@tenure/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** One logged line: the level, the fields and the message. */
export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

/** A pino-compatible logger that records every line. */
export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (fields: object, message = '') => {
      lines.push({ level, fields: fields as Record<string, unknown>, message });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** What the suite needs from an adapter. */
export interface HealthHarness {
  /** The TTL in force, ms (for the test bounds). */
  readonly ttlMs: number;
  /** A new arbitrator with these extra options (`logger`). */
  connect(options?: { logger?: unknown }): Arbitrator;
  /** Makes the arbitrator lose its session, as an expiry would. */
  expireSession(arbitrator: Arbitrator): Promise<void>;
  /** Stops what the harness started. */
  close(): Promise<void>;
}

/** Runs the health and logging checks on one adapter. */
export function describeHealthAndLogging(name: string, setup: () => Promise<HealthHarness>): void {
  describe(`health and logging: ${name}`, () => {
    let harness: HealthHarness;
    let timing: Timing;
    const opened: Arbitrator[] = [];
    let seq = 0;
    const electionName = () => `health-${process.pid}-${++seq}`;
    const open = (options?: { logger?: unknown }) => {
      const arbitrator = harness.connect(options);
      opened.push(arbitrator);
      return arbitrator;
    };
    const ready = (arbitrator: Arbitrator) =>
      waitFor(() => arbitrator.health().ready, {
        timeoutMs: timing.handoverMs,
        what: 'a live session',
      });

    beforeAll(async () => {
      harness = await setup();
      timing = new Timing(harness.ttlMs);
    });

    afterAll(async () => {
      await Promise.all(opened.map((a) => a.close()));
      await harness?.close();
    });

    it('health(): the session goes live with the granted TTL and a deadline ahead', async () => {
      const arbitrator = open();
      await ready(arbitrator);
      const report = arbitrator.health();
      expect(report.ready).toBe(true);
      expect(report.session.state).toBe('live');
      expect(report.session.id).not.toBe('');
      expect(report.session.ttlMs).toBe(arbitrator.ttlMs);
      expect(report.session.remainingMs).toBeGreaterThan(0);
      expect(report.session.remainingMs).toBeLessThanOrEqual(arbitrator.ttlMs);
      expect(report.elections).toEqual([]);
      // Plain JSON, as a readiness endpoint sends it.
      expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    });

    it('health(): each election with its state, and the term while leading', async () => {
      const a = open();
      const b = open();
      const n = electionName();
      const ea = a.election(n, { value: 'a' });
      const eb = b.election(n, { value: 'b' });
      expect(a.health().elections).toEqual([{ name: n, state: 'idle', value: 'a' }]);
      const term = await ea.campaign();
      const waiting = eb.campaign();
      await waitFor(() => b.health().elections[0]?.state === 'campaigning', {
        timeoutMs: timing.handoverMs,
        what: 'b campaigning',
      });
      const leading = a.health().elections[0];
      expect(leading).toMatchObject({
        name: n,
        state: 'leading',
        value: 'a',
        epoch: term.epoch.toString(),
        key: term.key,
      });
      expect(leading?.remainingMs).toBeGreaterThan(0);
      expect(b.health().elections).toEqual([{ name: n, state: 'campaigning', value: 'b' }]);

      await ea.resign();
      const next = await waiting;
      expect(a.health().elections).toEqual([{ name: n, state: 'idle', value: 'a' }]);
      expect(b.health().elections[0]).toMatchObject({
        state: 'leading',
        epoch: next.epoch.toString(),
      });
      await ea.close();
      expect(a.health().elections).toEqual([]);
    });

    it('health() after close: closed, not ready, no elections', async () => {
      const arbitrator = open();
      await ready(arbitrator);
      arbitrator.election(electionName());
      await arbitrator.close();
      expect(arbitrator.health()).toMatchObject({
        ready: false,
        session: { state: 'closed', remainingMs: 0 },
        elections: [],
      });
    });

    it('logger: session granted, term started and ended, with election, epoch and key', async () => {
      const logger = recordingLogger();
      const arbitrator = open({ logger });
      const n = electionName();
      const election = arbitrator.election(n);
      const term = await election.campaign();
      await election.resign();
      await arbitrator.close();
      const lines = logger.lines;
      const granted = lines.find((l) => l.message === 'session granted');
      expect(granted?.level).toBe('info');
      expect(granted?.fields.sessionId).toEqual(expect.any(String));
      expect(granted?.fields.arbitrator).toEqual(expect.any(String));
      const started = lines.find((l) => l.message.startsWith('elected'));
      expect(started?.level).toBe('info');
      expect(started?.fields).toMatchObject({
        election: n,
        epoch: term.epoch.toString(),
        key: term.key,
        waitedMs: expect.any(Number),
      });
      const ended = lines.find((l) => l.message.startsWith('term ended'));
      expect(ended?.level).toBe('info');
      expect(ended?.fields).toMatchObject({
        election: n,
        epoch: term.epoch.toString(),
        key: term.key,
        reason: 'resigned',
      });
      expect(lines.indexOf(granted!)).toBeLessThan(lines.indexOf(started!));
      expect(lines.indexOf(started!)).toBeLessThan(lines.indexOf(ended!));
      // Every line's fields are JSON (no bigint), as pino and most loggers need.
      for (const line of lines) expect(() => JSON.stringify(line.fields)).not.toThrow();
    });

    it('logger: a session loss is a warning, the term ends (session-lost or revoked), a new session is granted', async () => {
      const logger = recordingLogger();
      const arbitrator = open({ logger });
      const n = electionName();
      const election = arbitrator.election(n);
      const sessions: SessionEvent[] = [];
      arbitrator.on('session', (event) => sessions.push(event));
      const ends: EndReason[] = [];
      arbitrator.on('ended', (_term, reason) => ends.push(reason));
      const first = await election.campaign();
      const firstSession = arbitrator.health().session.id;
      const reelected = nextEvent(arbitrator, 'elected', {
        timeoutMs: timing.expiryMs,
        filter: (term) => term.epoch > first.epoch,
      });
      await harness.expireSession(arbitrator);
      const [second, { waitedMs }] = await reelected;
      // At first sight (G9): `revoked` when the key's deletion is seen before the session's
      // loss (etcd deletes a revoked lease's keys), `session-lost` when the loss comes first.
      const reason = await first.ended;
      expect(['session-lost', 'revoked']).toContain(reason);
      expect(ends).toContain(reason);
      expect(waitedMs).toBeGreaterThanOrEqual(0);
      expect(second.epoch).toBeGreaterThan(first.epoch);
      const lost = logger.lines.find((l) => l.message.startsWith('session lost'));
      expect(lost).toMatchObject({ level: 'warn', fields: { sessionId: firstSession } });
      const ended = logger.lines.find((l) => l.message === `term ended: ${reason}`);
      expect(ended).toMatchObject({
        level: 'warn',
        fields: { election: n, epoch: first.epoch.toString(), reason },
      });
      expect(sessions.map((e) => e.type)).toEqual(expect.arrayContaining(['lost', 'granted']));
      const report = arbitrator.health();
      expect(report.session.id).not.toBe(firstSession);
      expect(report.elections[0]).toMatchObject({ state: 'leading' });
    });

    it('the session event reports each acknowledged renewal with its round trip', async () => {
      const arbitrator = open();
      const [event] = await nextEvent(arbitrator, 'session', {
        timeoutMs: timing.handoverMs,
        filter: (e) => e.type === 'renewed',
      });
      expect(event.type).toBe('renewed');
      if (event.type === 'renewed') {
        expect(event.latencyMs).toBeGreaterThanOrEqual(0);
        expect(event.sessionId).toBe(arbitrator.health().session.id);
      }
    });

    it('a logger that throws changes nothing: the campaign still elects', async () => {
      const boom = () => {
        throw new Error('logger down');
      };
      const arbitrator = open({ logger: { debug: boom, info: boom, warn: boom, error: boom } });
      const term = await arbitrator.election(electionName()).campaign();
      expect(term.isValid()).toBe(true);
    });

    it.each([
      ['a string', 'console'],
      ['null', null],
      ['an object without methods', {}],
      ['an object missing error()', { debug() {}, info() {}, warn() {} }],
    ])('a bad logger (%s) is an InvalidArgumentError on field logger', (_what, logger) => {
      let thrown: unknown;
      try {
        open({ logger });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidArgumentError);
      expect((thrown as InvalidArgumentError).field).toBe('logger');
    });
  });
}
