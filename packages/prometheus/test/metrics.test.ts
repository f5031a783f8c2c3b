import { ConflictError, InvalidArgumentError } from '@tenure/core';
import { createScheduler, type Scheduler, type SchedulerEvents } from '@tenure/cron';
import { createMemoryArbitrator, createMemoryServer, type MemoryArbitrator } from '@tenure/memory';
import { createTenureMetrics, type TenureMetrics } from '@tenure/prometheus';
import { Timing, waitFor } from '@tenure/testkit';
import { EventEmitter } from 'eventemitter3';
import { Registry } from 'prom-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseSamples, type Sample, sampleValue } from './prometheus-text.js';

const TTL = 1_000;
const timing = new Timing(TTL);
const server = createMemoryServer({ expiryCheckMs: 20 });
const opened: MemoryArbitrator[] = [];
let seq = 0;
const electionName = () => `metrics-${++seq}`;

function open(): MemoryArbitrator {
  const arbitrator = createMemoryArbitrator({ server, ttlMs: TTL });
  opened.push(arbitrator);
  return arbitrator;
}

async function scrape(metrics: TenureMetrics): Promise<Sample[]> {
  return parseSamples(await metrics.registry.metrics());
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
});
afterAll(() => server.close());

describe('@tenure/prometheus: arbitrators and elections', () => {
  it('leader status, epoch, state and terms follow a handover between two replicas', async () => {
    const a = open();
    const b = open();
    const ma = createTenureMetrics();
    const mb = createTenureMetrics();
    ma.instrumentArbitrator(a);
    mb.instrumentArbitrator(b);
    const n = electionName();
    const ea = a.election(n, { value: 'a' });
    const eb = b.election(n, { value: 'b' });
    const first = await ea.campaign();
    const waiting = eb.campaign();
    await waitFor(() => b.health().elections[0]?.state === 'campaigning', {
      timeoutMs: timing.handoverMs,
    });

    let sa = await scrape(ma);
    let sb = await scrape(mb);
    const election = { arbitrator: 'default', election: n };
    expect(sampleValue(sa, 'tenure_election_leader', election)).toBe(1);
    expect(sampleValue(sb, 'tenure_election_leader', election)).toBe(0);
    expect(sampleValue(sa, 'tenure_election_epoch', election)).toBe(Number(first.epoch));
    expect(sampleValue(sb, 'tenure_election_epoch', election)).toBeUndefined();
    expect(sampleValue(sa, 'tenure_election_state', { ...election, state: 'leading' })).toBe(1);
    expect(sampleValue(sb, 'tenure_election_state', { ...election, state: 'campaigning' })).toBe(1);
    expect(sampleValue(sb, 'tenure_election_state', { ...election, state: 'leading' })).toBe(0);
    expect(sampleValue(sa, 'tenure_election_terms_started_total', election)).toBe(1);
    expect(sampleValue(sa, 'tenure_election_time_to_elect_seconds_count', election)).toBe(1);
    expect(sampleValue(sa, 'tenure_session_up', { arbitrator: 'default' })).toBe(1);
    expect(sampleValue(sa, 'tenure_session_state', { state: 'live' })).toBe(1);
    expect(sampleValue(sa, 'tenure_session_ttl_seconds')).toBe(TTL / 1000);
    expect(sampleValue(sa, 'tenure_session_deadline_remaining_seconds')).toBeGreaterThan(0);
    expect(sampleValue(sa, 'tenure_sessions_granted_total')).toBe(1);

    await ea.resign();
    const second = await waiting;
    sa = await scrape(ma);
    sb = await scrape(mb);
    expect(sampleValue(sa, 'tenure_election_leader', election)).toBe(0);
    expect(sampleValue(sb, 'tenure_election_leader', election)).toBe(1);
    // a keeps the epoch of its last term; b's is larger.
    expect(sampleValue(sa, 'tenure_election_epoch', election)).toBe(Number(first.epoch));
    expect(sampleValue(sb, 'tenure_election_epoch', election)).toBe(Number(second.epoch));
    expect(
      sampleValue(sa, 'tenure_election_terms_ended_total', { ...election, reason: 'resigned' }),
    ).toBe(1);
    expect(sampleValue(sa, 'tenure_election_term_duration_seconds_count', election)).toBe(1);
    expect(sampleValue(sb, 'tenure_election_time_to_elect_seconds_count', election)).toBe(1);
    expect(sampleValue(sb, 'tenure_election_time_to_elect_seconds_sum', election)).toBeGreaterThan(
      0,
    );

    // A closed election's series leave the gauges; its counters stay.
    await ea.close();
    sa = await scrape(ma);
    expect(sampleValue(sa, 'tenure_election_leader', election)).toBeUndefined();
    expect(sampleValue(sa, 'tenure_election_terms_started_total', election)).toBe(1);
  });

  it('renewal latency, session loss and the rejoin', async () => {
    const a = open();
    const metrics = createTenureMetrics();
    metrics.instrumentArbitrator(a, { name: 'primary' });
    const n = electionName();
    const first = await a.election(n).campaign();
    await waitFor(
      async () =>
        (sampleValue(await scrape(metrics), 'tenure_session_renewal_duration_seconds_count') ?? 0) >
        0,
      { timeoutMs: timing.handoverMs, what: 'a renewal observed' },
    );
    a.expire();
    expect(await first.ended).toBe('session-lost');
    await waitFor(() => a.health().elections[0]?.state === 'leading', {
      timeoutMs: timing.expiryMs,
      what: 'leading again',
    });
    const samples = await scrape(metrics);
    const labels = { arbitrator: 'primary' };
    expect(sampleValue(samples, 'tenure_sessions_lost_total', labels)).toBe(1);
    expect(sampleValue(samples, 'tenure_sessions_granted_total', labels)).toBe(2);
    expect(
      sampleValue(samples, 'tenure_election_terms_ended_total', {
        ...labels,
        election: n,
        reason: 'session-lost',
      }),
    ).toBe(1);
    expect(
      sampleValue(samples, 'tenure_election_terms_started_total', { ...labels, election: n }),
    ).toBe(2);
    expect(sampleValue(samples, 'tenure_connection_changes_total', { state: 'lost' })).toBe(1);
    expect(
      sampleValue(samples, 'tenure_election_epoch', { ...labels, election: n }),
    ).toBeGreaterThan(Number(first.epoch));
  });

  it('renewal failures and errors by code during a partition; the session state gauge follows', async () => {
    const a = open();
    const metrics = createTenureMetrics();
    metrics.instrumentArbitrator(a);
    await a.election(electionName()).campaign();
    a.partition();
    await waitFor(
      async () =>
        (sampleValue(await scrape(metrics), 'tenure_session_renewal_failures_total') ?? 0) > 0,
      { timeoutMs: timing.handoverMs, what: 'a failed renewal counted' },
    );
    const samples = await scrape(metrics);
    expect(sampleValue(samples, 'tenure_errors_total', { code: 'UNAVAILABLE' })).toBeGreaterThan(0);
    expect(sampleValue(samples, 'tenure_connection_changes_total', { state: 'suspended' })).toBe(1);
    a.heal();
  });

  it('a paused leader past its deadline is not counted as leader, before its term has ended', async () => {
    const a = open();
    const metrics = createTenureMetrics();
    metrics.instrumentArbitrator(a);
    const n = electionName();
    const term = await a.election(n).campaign();
    a.pause(); // no timer of a's runs: the term cannot end, but its deadline passes
    await waitFor(() => !term.isValid(), { timeoutMs: timing.handoverMs, what: 'the deadline' });
    expect(term.endReason).toBeUndefined();
    expect(a.health().elections[0]).toMatchObject({ state: 'leading', remainingMs: 0 });
    const samples = await scrape(metrics);
    expect(sampleValue(samples, 'tenure_election_leader', { election: n })).toBe(0);
    expect(sampleValue(samples, 'tenure_session_up')).toBe(0);
    a.resume();
    expect(await term.ended).toBe('expired');
  });

  it('labels never carry candidate values, keys or session ids', async () => {
    const a = open();
    const metrics = createTenureMetrics();
    metrics.instrumentArbitrator(a);
    const term = await a.election(electionName(), { value: 'secret-candidate-value' }).campaign();
    const text = await metrics.registry.metrics();
    expect(text).not.toContain('secret-candidate-value');
    expect(text).not.toContain(term.key);
    expect(text).not.toContain(a.sessionId);
    // Every label comes from a fixed list of names, each with bounded values.
    const allowed = [
      'arbitrator',
      'election',
      'job',
      'state',
      'reason',
      'code',
      'outcome',
      'trigger',
      'le',
    ];
    for (const sample of parseSamples(text)) {
      for (const label of Object.keys(sample.labels)) expect(allowed).toContain(label);
    }
  });

  it('stop: the arbitrator leaves the gauges', async () => {
    const a = open();
    const metrics = createTenureMetrics();
    const stop = metrics.instrumentArbitrator(a);
    await a.election(electionName()).campaign();
    expect(sampleValue(await scrape(metrics), 'tenure_session_up')).toBe(1);
    stop();
    const samples = await scrape(metrics);
    expect(sampleValue(samples, 'tenure_session_up')).toBeUndefined();
    expect(samples.filter((s) => s.name === 'tenure_election_leader')).toEqual([]);
  });

  it('a closed arbitrator reports its session closed; its replacement may take its name', async () => {
    const a = open();
    const metrics = createTenureMetrics();
    metrics.instrumentArbitrator(a);
    await a.close();
    const samples = await scrape(metrics);
    expect(sampleValue(samples, 'tenure_session_up')).toBe(0);
    expect(sampleValue(samples, 'tenure_session_state', { state: 'closed' })).toBe(1);
    const b = open();
    metrics.instrumentArbitrator(b);
    await b.election(electionName()).campaign();
    expect(sampleValue(await scrape(metrics), 'tenure_session_up')).toBe(1);
  });

  it('bad input: typed errors at once', () => {
    expect(() => createTenureMetrics({ prefix: 'bad prefix' })).toThrow(InvalidArgumentError);
    expect(() => createTenureMetrics({ registry: {} as Registry })).toThrow(InvalidArgumentError);
    const registry = new Registry();
    createTenureMetrics({ registry });
    expect(() => createTenureMetrics({ registry })).toThrow(ConflictError);
    // A second set in the same registry under another prefix is fine.
    expect(() => createTenureMetrics({ registry, prefix: 'other_' })).not.toThrow();
    const metrics = createTenureMetrics();
    expect(() => metrics.instrumentArbitrator({} as MemoryArbitrator)).toThrow(
      InvalidArgumentError,
    );
    expect(() => metrics.instrumentScheduler({} as Scheduler)).toThrow(InvalidArgumentError);
    const a = open();
    metrics.instrumentArbitrator(a);
    expect(() => metrics.instrumentArbitrator(a, { name: 'again' })).toThrow(ConflictError);
    expect(() => metrics.instrumentArbitrator(open())).toThrow(ConflictError);
    expect(() => metrics.instrumentArbitrator(open(), { name: '' })).toThrow(InvalidArgumentError);
    expect(() => metrics.instrumentArbitrator(open(), { name: 'second' })).not.toThrow();
  });

  it('the global registry of prom-client can be shared', async () => {
    const registry = new Registry();
    const metrics = createTenureMetrics({ registry, prefix: 'svc_tenure_' });
    metrics.instrumentArbitrator(open());
    expect(metrics.registry).toBe(registry);
    expect(await registry.metrics()).toContain('svc_tenure_session_up');
  });
});

/** A stand-in scheduler: the public events and `jobs()` the metrics hook, emitted by hand. */
class FakeScheduler extends EventEmitter<SchedulerEvents> {
  readonly election = { name: 'cron-election' };
  running = false;
  jobs() {
    return [
      {
        name: 'report',
        schedule: '* * * * *',
        timezone: undefined,
        nextSlot: undefined,
        lastSlot: undefined,
        running: this.running,
      },
    ];
  }
}

describe('@tenure/prometheus: cron schedulers', () => {
  const run = {
    job: 'report',
    slot: '2026-01-01T00:00:00.000Z',
    trigger: 'schedule' as const,
    attempt: 1,
    startedAt: '2026-01-01T00:00:00.250Z',
    epoch: '7',
    candidate: 'secret-candidate',
  };

  it('runs by outcome, duration, lateness, missed, skipped, zombies and running jobs', async () => {
    const metrics = createTenureMetrics();
    const scheduler = new FakeScheduler();
    const stop = metrics.instrumentScheduler(scheduler as unknown as Scheduler);
    expect(() => metrics.instrumentScheduler(scheduler as unknown as Scheduler)).toThrow(
      ConflictError,
    );
    const labels = { election: 'cron-election', job: 'report' };
    scheduler.running = true;
    scheduler.emit('run-start', run);
    let samples = await scrape(metrics);
    expect(sampleValue(samples, 'tenure_cron_running', labels)).toBe(1);
    expect(
      sampleValue(samples, 'tenure_cron_lateness_seconds_sum', { ...labels, trigger: 'schedule' }),
    ).toBeCloseTo(0.25);
    scheduler.running = false;
    scheduler.emit('run-end', {
      ...run,
      endedAt: '2026-01-01T00:00:02.250Z',
      outcome: 'success',
    });
    scheduler.emit('run-end', {
      ...run,
      endedAt: '2026-01-01T00:00:09.000Z',
      outcome: 'interrupted',
    });
    scheduler.emit('run-end', { ...run, endedAt: '2026-01-01T00:00:01.250Z', outcome: 'error' });
    scheduler.emit('missed', 'report', [new Date(0), new Date(1000), new Date(2000)], false);
    scheduler.emit('skipped', 'report', new Date(0), 'overlap');
    scheduler.emit('zombie', { ...run, zombie: true });
    samples = await scrape(metrics);
    expect(sampleValue(samples, 'tenure_cron_running', labels)).toBe(0);
    expect(sampleValue(samples, 'tenure_cron_runs_total', { ...labels, outcome: 'success' })).toBe(
      1,
    );
    expect(sampleValue(samples, 'tenure_cron_runs_total', { ...labels, outcome: 'error' })).toBe(1);
    expect(
      sampleValue(samples, 'tenure_cron_runs_total', { ...labels, outcome: 'interrupted' }),
    ).toBe(1);
    // Interrupted runs ended on another replica: no duration.
    expect(sampleValue(samples, 'tenure_cron_run_duration_seconds_count', labels)).toBe(2);
    expect(sampleValue(samples, 'tenure_cron_run_duration_seconds_sum', labels)).toBeCloseTo(3);
    expect(sampleValue(samples, 'tenure_cron_missed_slots_total', labels)).toBe(3);
    expect(
      sampleValue(samples, 'tenure_cron_skipped_slots_total', { ...labels, reason: 'overlap' }),
    ).toBe(1);
    expect(sampleValue(samples, 'tenure_cron_zombies_total', labels)).toBe(1);
    expect(await metrics.registry.metrics()).not.toContain('secret-candidate');

    // An outcome from outside the known set (a newer @tenure/cron) is counted as `other`.
    scheduler.emit('run-end', { ...run, outcome: 'vanished' as 'success' });
    expect(
      sampleValue(await scrape(metrics), 'tenure_cron_runs_total', { ...labels, outcome: 'other' }),
    ).toBe(1);

    stop();
    expect(scheduler.listenerCount('run-end')).toBe(0);
    expect(sampleValue(await scrape(metrics), 'tenure_cron_running', labels)).toBeUndefined();
  });

  it('a real scheduler on the memory arbitrator: its runs are counted with their lateness', async () => {
    const arbitrator = open();
    const metrics = createTenureMetrics();
    metrics.instrumentArbitrator(arbitrator);
    const election = arbitrator.election(electionName());
    const scheduler = createScheduler(election);
    scheduler.add('tick', '* * * * * *', async () => {});
    metrics.instrumentScheduler(scheduler);
    scheduler.start();
    try {
      const labels = { election: election.name, job: 'tick', outcome: 'success' };
      await waitFor(
        async () =>
          (sampleValue(await scrape(metrics), 'tenure_cron_runs_total', labels) ?? 0) >= 1,
        { timeoutMs: timing.scale(5_000), what: 'a successful run counted' },
      );
      const samples = await scrape(metrics);
      const lateness = samples.filter(
        (s) => s.name === 'tenure_cron_lateness_seconds_count' && s.labels.job === 'tick',
      );
      expect(lateness.reduce((sum, s) => sum + s.value, 0)).toBeGreaterThanOrEqual(1);
    } finally {
      await scheduler.stop();
    }
  });
});
