/**
 * A one-node Slurm cluster for tests (Debian's slurm-wlm and munge, as root): a slurm.conf in a temp
 * folder with ProctrackType=proctrack/linuxproc and TaskPlugin=task/none, its own ports and spool, munged
 * started when not already running. `startCluster` says why when it cannot start (the test is then skipped
 * with that reason); `stop` shuts down what it started.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers.js';

export interface SlurmCluster {
  env: Record<string, string>;
  /** Runs a Slurm client (sbatch, squeue, scancel, …) against this cluster; returns stdout. */
  client(cmd: string, args: string[], cwd?: string): string;
  stop(): void;
}

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function ensureMunge(): string | undefined {
  if (spawnSync('pgrep', ['-x', 'munged']).status === 0) return undefined;
  if (!fs.existsSync('/etc/munge/munge.key')) return 'no /etc/munge/munge.key';
  fs.mkdirSync('/run/munge', { recursive: true });
  spawnSync('chown', ['munge:munge', '/run/munge']);
  const r = spawnSync('runuser', ['-u', 'munge', '--', '/usr/sbin/munged']);
  return r.status === 0 ? undefined : `munged did not start: ${r.stderr.toString().trim()}`;
}

export function startCluster(): SlurmCluster | string {
  for (const c of ['slurmctld', 'slurmd', 'sbatch', 'munged']) if (!has(c)) return `${c} is not installed (apt-get install slurm-wlm munge)`;
  if (process.getuid?.() !== 0) return 'the one-node cluster runs as root';
  const mungeProblem = ensureMunge();
  if (mungeProblem) return mungeProblem;
  const dir = tempDir('supar-slurm-');
  const host = execFileSync('hostname', ['-s']).toString().trim();
  const port = 20000 + Math.floor(Math.random() * 20000);
  for (const d of ['state', 'spool', 'log']) fs.mkdirSync(path.join(dir, d));
  const conf = path.join(dir, 'slurm.conf');
  fs.writeFileSync(conf, [
    'ClusterName=supartest', `SlurmctldHost=${host}`, 'SlurmUser=root', 'SlurmdUser=root', 'AuthType=auth/munge',
    'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'SchedulerType=sched/backfill',
    'SelectType=select/cons_tres', 'SelectTypeParameters=CR_Core', 'MpiDefault=none', 'ReturnToService=2',
    `SlurmctldPort=${port}`, `SlurmdPort=${port + 1}`, `StateSaveLocation=${dir}/state`, `SlurmdSpoolDir=${dir}/spool`,
    `SlurmctldPidFile=${dir}/slurmctld.pid`, `SlurmdPidFile=${dir}/slurmd.pid`,
    `SlurmctldLogFile=${dir}/log/slurmctld.log`, `SlurmdLogFile=${dir}/log/slurmd.log`,
    `NodeName=${host} CPUs=2 RealMemory=4000 State=UNKNOWN`,
    'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP', '',
  ].join('\n'));
  const env = { ...process.env, SLURM_CONF: conf } as Record<string, string>;
  const client = (cmd: string, args: string[], cwd?: string): string => execFileSync(cmd, args, { env, cwd }).toString();
  const stop = (): void => {
    spawnSync('scontrol', ['shutdown'], { env });
    for (const pid of ['slurmctld.pid', 'slurmd.pid']) {
      try { process.kill(Number(fs.readFileSync(path.join(dir, pid), 'utf8')), 'SIGKILL'); } catch { /* already gone */ }
    }
  };
  const ctl = spawnSync('slurmctld', ['-i'], { env });
  const d = spawnSync('slurmd', [], { env });
  if (ctl.status !== 0 || d.status !== 0) { stop(); return `slurmctld/slurmd did not start: ${(ctl.stderr.toString() + d.stderr.toString()).trim()}`; }
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const r = spawnSync('sinfo', ['-h', '-o', '%T'], { env });
    if (r.status === 0 && /idle/.test(r.stdout.toString())) return { env, client, stop };
    spawnSync('sleep', ['0.5']);
  }
  stop();
  return `the node did not come up idle within 20 s (see ${dir}/log)`;
}
