// Why a fencing token is still needed at the resource: a leader that was paused longer than
// its TTL wakes up believing it leads. Its term.isValid() says no, but a write already in
// flight (or a check done just before the pause) would reach the resource late. The resource
// refuses it because it has already seen a larger epoch.
//
//   node examples/fenced-writes.mjs
import { createMemoryArbitrator, createMemoryServer, FenceGate, StaleEpochError } from 'tenure';

const server = createMemoryServer();
const a = createMemoryArbitrator({ server, ttlMs: 1_000 });
const b = createMemoryArbitrator({ server, ttlMs: 1_000 });
const database = new FenceGate(); // stands in for a table that stores the highest epoch seen

const termA = await a.election('ledger', { value: 'a' }).campaign();
console.log(`a leads with epoch ${termA.epoch}; it checks isValid(): ${termA.isValid()}`);
const checkedAt = termA.epoch;

a.pause(); // a long GC pause, right after the check and before the write
const termB = await b.election('ledger', { value: 'b' }).campaign();
console.log(`b leads with epoch ${termB.epoch} after a's session expired`);
await database.admit(termB.epoch);
console.log(`b's write with epoch ${termB.epoch}: accepted`);

a.resume();
try {
  await database.admit(checkedAt); // a's late write, carrying its old epoch
  console.log('a: accepted (this must not happen)');
  process.exitCode = 1;
} catch (error) {
  if (!(error instanceof StaleEpochError)) throw error;
  console.log(`a's late write with epoch ${checkedAt}: refused, ${error.message}`);
}
console.log(`a's term isValid() now: ${termA.isValid()} (${await termA.ended})`);

await Promise.all([a.close(), b.close()]);
await server.close();
