#!/usr/bin/env node
// The fastify-session-suite binary. All logic is in lib/keyring/cli.ts; this
// file always runs main() (npm links it under another name, so no main-module check).
import { main } from '../lib/keyring/cli.ts'

process.exitCode = await main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr })
