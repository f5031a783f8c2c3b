import { describe, expect, it } from 'vitest';
import { startWitness } from '../src/nemesis/index.js';

async function write(url: string, body: unknown): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', connection: 'close' },
  });
  await response.text();
  return response.status;
}

describe('the nemesis witness', () => {
  it('accepts epochs at least the highest accepted, refuses lower ones, and logs both', async () => {
    await using witness = await startWitness();
    expect(await write(witness.url, { process: 'a#1', epoch: '5', seq: 1 })).toBe(200);
    expect(await write(witness.url, { process: 'a#1', epoch: '5', seq: 2 })).toBe(200);
    expect(await write(witness.url, { process: 'b#1', epoch: '9', seq: 1 })).toBe(200);
    expect(await write(witness.url, { process: 'a#1', epoch: '5', seq: 3 })).toBe(409);
    expect(witness.log.map((w) => [w.process, w.epoch, w.seq, w.accepted])).toEqual([
      ['a#1', '5', 1, true],
      ['a#1', '5', 2, true],
      ['b#1', '9', 1, true],
      ['a#1', '5', 3, false],
    ]);
    const times = witness.log.map((w) => w.t);
    expect([...times].sort((x, y) => x - y)).toEqual(times);
  });

  it('answers a malformed write 400 and does not log it', async () => {
    await using witness = await startWitness();
    expect(await write(witness.url, { process: 'a#1', epoch: 5, seq: 1 })).toBe(400);
    expect(await write(witness.url, 'nonsense')).toBe(400);
    expect(witness.log).toEqual([]);
  });
});
