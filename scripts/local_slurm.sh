#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for the tests marked `slurm` (issue 14).
#
#   sudo scripts/local_slurm.sh start    # munged, MariaDB, slurmdbd, slurmctld, slurmd; waits until the node is idle
#   sudo scripts/local_slurm.sh status   # the daemons this script started, and `sinfo`
#   sudo scripts/local_slurm.sh stop     # stops only the daemons this script started (by their pid files)
#
# Needs root and Debian's packages: slurmctld slurmd slurm-client munge slurmdbd mariadb-server
# (`LOCAL_SLURM_INSTALL=1` installs them with apt-get when missing). Accounting (slurmdbd + MariaDB) is
# there because submitit reads job states with `sacct`. Everything the script writes besides
# /etc/slurm/{slurm,slurmdbd}.conf and the munge key lives in $LOCAL_SLURM_DIR (default /tmp/relight-bench-slurm):
# state, spool, logs, pid files. Daemons listen on 127.0.0.1 ports 6817-6819 and 3306.
set -euo pipefail

DIR="${LOCAL_SLURM_DIR:-/tmp/relight-bench-slurm}"
CLUSTER=relightbench
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

die() { echo "local_slurm: $*" >&2; exit 1; }
say() { echo "local_slurm: $*"; }

need_root_and_packages() {
  [ "$(id -u)" = 0 ] || die "must run as root (it starts system daemons)"
  local missing=()
  for bin in slurmctld slurmd munged slurmdbd mariadbd sbatch sacct; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "${LOCAL_SLURM_INSTALL:-0}" = 1 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing ${PACKAGES[*]}"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
    else
      die "missing ${missing[*]}; install the Debian packages ${PACKAGES[*]} (or set LOCAL_SLURM_INSTALL=1)"
    fi
  fi
}

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.5 s until it succeeds or time runs out
wait_for() {
  local seconds=$1 what=$2; shift 2
  local tries=$((seconds * 2))
  until "$@" >/dev/null 2>&1; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || { show_logs; die "timed out after ${seconds} s waiting for $what"; }
    sleep 0.5
  done
}

show_logs() {
  local log
  for log in "$DIR"/log/*.log; do
    if [ -f "$log" ]; then echo "----- $log (last 20 lines)"; tail -n 20 "$log"; fi
  done >&2
  return 0
}

running() {  # running NAME: the daemon whose pid file is $DIR/pid/NAME.pid is alive
  local file="$DIR/pid/$1.pid"
  [ -s "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if ! running munged; then
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged --force --log-file="/var/log/munge/munged.log"
    wait_for 10 munged test -s /run/munge/munged.pid
    cp /run/munge/munged.pid "$DIR/pid/munged.pid"
  fi
  wait_for 10 "munge to answer" bash -c 'munge -n | unmunge'
}

start_mariadb() {
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$DIR/log/mariadb-install.log" 2>&1
  fi
  chown -R mysql:mysql /var/lib/mysql
  if ! running mariadbd; then
    /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address=127.0.0.1 --port=3306 \
      --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mariadbd.pid >"$DIR/log/mariadbd.log" 2>&1 &
    wait_for 30 MariaDB mariadb --socket=/run/mysqld/mysqld.sock -e 'SELECT 1'
    cp /run/mysqld/mariadbd.pid "$DIR/pid/mariadbd.pid"  # written as user mysql, which cannot write in $DIR
  fi
  mariadb --socket=/run/mysqld/mysqld.sock -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

write_configs() {
  mkdir -p /etc/slurm "$DIR"/{state,spool}
  local node real cpus per_cpu
  node=$(slurmd -C | head -n 1)
  real=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
  node=$(sed "s/RealMemory=[0-9]*/RealMemory=$((real * 9 / 10))/" <<<"$node")
  cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$node")
  # a job that asks for no memory gets its CPUs' share, not the whole node (which would run jobs one at a time)
  per_cpu=$((real * 9 / 10 / ${cpus:-1}))
  cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$DIR/pid/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
EOF
  chmod 600 /etc/slurm/slurmdbd.conf
  cat >/etc/slurm/slurm.conf <<EOF
# written by relight-bench scripts/local_slurm.sh
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/pid/slurmctld.pid
SlurmdPidFile=$DIR/pid/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=1
MailProg=/bin/true
KillWait=5
ReturnToService=2
$node
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$per_cpu
EOF
}

start() {
  need_root_and_packages
  mkdir -p "$DIR"/{pid,log}
  start_munge
  start_mariadb
  write_configs
  running slurmdbd || /usr/sbin/slurmdbd
  wait_for 30 slurmdbd sacctmgr -n list cluster
  sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
  running slurmctld || /usr/sbin/slurmctld
  running slurmd || /usr/sbin/slurmd
  wait_for 60 "the node to be idle" bash -c 'sinfo -h -o %T | grep -q idle'
  say "up: $(sinfo -h -o '%P %D %T %c CPUs %m MB' | head -n 1) (logs in $DIR/log)"
}

stop() {
  local name pid
  for name in slurmd slurmctld slurmdbd mariadbd munged; do  # the reverse of the start order
    running "$name" || { rm -f "$DIR/pid/$name.pid"; continue; }
    pid=$(cat "$DIR/pid/$name.pid")
    kill "$pid"
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    rm -f "$DIR/pid/$name.pid"
    say "stopped $name ($pid)"
  done
}

status() {
  local name
  for name in munged mariadbd slurmdbd slurmctld slurmd; do
    if running "$name"; then echo "$name: running ($(cat "$DIR/pid/$name.pid"))"; else echo "$name: not running"; fi
  done
  running slurmctld && sinfo
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
