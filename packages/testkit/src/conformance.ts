/**
 * The shared conformance suite: one function every adapter's tests call with a harness for its
 * backend, checking guarantees G1–G8 (the table in docs/concepts.md, "The guarantees") through
 * the public interfaces only.
 *
 * @packageDocumentation
 */

import { type Arbitrator, isStateCapable } from '@tenure/core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { describeAdvertisedTests } from './conformance/advertised.js';
import { describeCancellationTests } from './conformance/cancellation.js';
import type { ForeignCandidate, SeverableArbitrator } from './conformance/context.js';
import { ConformanceContext, type ConformanceTest, describeError } from './conformance/context.js';
import { describeElectionTests } from './conformance/election.js';
import { describeEpochTests } from './conformance/epochs.js';
import { describeFencingTests } from './conformance/fencing.js';
import { describeHandoverTests } from './conformance/handover.js';
import { describePriorityTests } from './conformance/priority.js';
import { describeSessionTests } from './conformance/sessions.js';
import { describeStateTests } from './conformance/state.js';
import { Timing } from './timing.js';

/** What the conformance suite needs from a backend. */
export interface ConformanceHarness {
  /** TTL (ms) the arbitrators are opened with; tests scale their waits from it. */
  readonly ttlMs: number;
  /** Opens a new arbitrator (client + its own session) on the shared backend. */
  connect(): Promise<Arbitrator>;
  /**
   * Makes the backend drop `arbitrator`'s current session, as a lease/session expiry would
   * (e.g. memory: `arbitrator.expire()`; etcd: revoke the lease from another client). Resolves
   * once dropped on the backend side.
   */
  expireSession(arbitrator: Arbitrator): Promise<void>;
  /** Releases the backend (called once in `afterAll`). */
  close(): Promise<void>;
  /**
   * Opens an arbitrator whose connection to the backend the test can cut and restore (memory:
   * `partition()`/`heal()`; etcd and ZooKeeper: a TCP proxy). Closed with the test.
   */
  connectSeverable(): Promise<SeverableArbitrator>;
  /**
   * Adds a foreign candidate to an election: a key as another client writes it (etcd: a key
   * under `<election>/` with a lease of its own, as `etcdctl elect` does; ZooKeeper: a
   * Curator-layout ephemeral sequential `_c_<uuid>-latch-` node). Required unless
   * {@link ConformanceOptions.foreignCandidates} is `'none'`.
   */
  readonly addForeignCandidate?:
    | ((election: string, value: Uint8Array) => Promise<ForeignCandidate>)
    | undefined;
}

/** Options of {@link describeElectionConformance}. */
export interface ConformanceOptions {
  /**
   * Whether the backend accepts `/` between non-empty segments of an election name: memory
   * does (`'allowed'`, the default), etcd and ZooKeeper do not (`'forbidden'`). Empty segments
   * (`a//b`) are refused everywhere.
   */
  slashInNames?: 'allowed' | 'forbidden';
  /** The vitest timeout of each test, ms. Default 60 000; waits inside are bounded tighter. */
  testTimeoutMs?: number;
  /**
   * Whether the adapter implements core's state SPI, so the replicated map's tests run:
   * `'supported'` (the default). `'not-yet'` registers, in their place, one test that fails the
   * day the adapter does implement it (so the option is removed then): never a silent skip.
   */
  replicatedState?: 'supported' | 'not-yet';
  /**
   * Whether other clients than tenure can campaign on the backend (etcd's `etcdctl elect`,
   * Curator's `LeaderLatch`): `'supported'` (the default) runs the tests with a foreign
   * candidate through `ConformanceHarness.addForeignCandidate`; `'none'` (memory) leaves them out.
   */
  foreignCandidates?: 'supported' | 'none';
}

/**
 * Registers the conformance suite as a vitest `describe(name, …)` block. `makeHarness` runs
 * once (in `beforeAll`); one backend serves every test, each test uses fresh election names and
 * closes every arbitrator it opened. Waits are bounded by {@link Timing} from the harness's TTL;
 * no test asserts on a duration.
 */
export function describeElectionConformance(
  name: string,
  makeHarness: () => Promise<ConformanceHarness>,
  options: ConformanceOptions = {},
): void {
  const slashInNames = options.slashInNames ?? 'allowed';
  const testTimeoutMs = options.testTimeoutMs ?? 60_000;

  describe(name, () => {
    let harness: ConformanceHarness | undefined;
    let timing: Timing | undefined;

    beforeAll(async () => {
      harness = await makeHarness();
      timing = new Timing(harness.ttlMs);
    });

    afterAll(async () => {
      await harness?.close();
    });

    /** A test with a fresh {@link ConformanceContext}, disposed however the test ends. */
    const test: ConformanceTest = (title, body) => {
      it(
        title,
        async () => {
          if (harness === undefined || timing === undefined) {
            throw new Error('The conformance harness was not created (see beforeAll)');
          }
          const t = new ConformanceContext(harness, timing);
          let failure: { error: unknown } | undefined;
          try {
            await body(t);
          } catch (error) {
            failure = { error };
          }
          const cleanup = await t.dispose();
          if (failure !== undefined) throw failure.error;
          if (cleanup.length > 0) {
            throw new Error(
              `Releasing the test's arbitrators failed: ${cleanup.map(describeError).join('; ')}`,
            );
          }
        },
        testTimeoutMs,
      );
    };

    describeElectionTests(test);
    describeHandoverTests(test);
    describeEpochTests(test);
    describeFencingTests(test);
    describeSessionTests(test);
    describeCancellationTests(test, slashInNames);
    describeAdvertisedTests(test);
    describePriorityTests(test, options.foreignCandidates ?? 'supported');
    if ((options.replicatedState ?? 'supported') === 'supported') describeStateTests(test);
    else {
      test('state SPI: not implemented yet (remove replicatedState: not-yet once it is)', async (t) => {
        const arbitrator = await t.connect();
        if (isStateCapable(arbitrator)) {
          throw new Error('The adapter implements the state SPI now: drop `replicatedState`');
        }
      });
    }
  });
}
