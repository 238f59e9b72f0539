import { Command, CommanderError } from "commander";
import { VERSION } from "../version.ts";
import { backupCommand } from "./backup.ts";
import { daemonCommand } from "./daemon.ts";
import { doctorCommand } from "./doctor.ts";
import { drillCommand } from "./drill.ts";
import { reportError } from "./exit.ts";
import { keygenCommand } from "./keygen.ts";
import { pruneCommand } from "./prune.ts";
import { reportCommand } from "./report.ts";
import { restoreCommand } from "./restore.ts";
import { snapshotsCommand } from "./snapshots.ts";
import { undeleteCommand } from "./undelete.ts";
import { verifyCommand } from "./verify.ts";

/** Builds the program with every command. */
export function buildProgram(): Command {
  const program = new Command("lifeboat")
    .description("encrypted, cross-boundary, drilled backups of databases and volumes")
    .version(VERSION)
    .option("--config <file>", "backup.config.ts to use (default ./backup.config.ts, or $LIFEBOAT_CONFIG)")
    .option("--json", "print machine-readable JSON on stdout")
    .showHelpAfterError()
    .exitOverride();
  for (const make of [
    keygenCommand,
    backupCommand,
    snapshotsCommand,
    drillCommand,
    verifyCommand,
    restoreCommand,
    doctorCommand,
    pruneCommand,
    undeleteCommand,
    reportCommand,
    daemonCommand,
  ]) {
    program.addCommand(make().copyInheritedSettings(program));
  }
  return program;
}

/** Runs the CLI; returns the exit code instead of exiting, so it stays testable. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError && err.exitCode === 0) return 0;
    return reportError(err, argv.includes("--json"));
  }
}
