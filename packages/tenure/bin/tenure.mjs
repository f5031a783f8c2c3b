#!/usr/bin/env node
// The `tenure` command. A committed launcher (not the built file itself), so that a package
// manager links the command at install time, before a clone has been built.
try {
  await import('../dist/cli/main.js');
} catch (error) {
  if (
    error?.code === 'ERR_MODULE_NOT_FOUND' &&
    String(error.message).includes('dist/cli/main.js')
  ) {
    process.stderr.write(
      'tenure: not built yet: run `npm run build` (or `pnpm run build`) first\n',
    );
    process.exit(70);
  }
  throw error;
}
