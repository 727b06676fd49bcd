"""Names kdump takes from libsysdecode: syscalls, signals, signal codes, vm_fault results.

A binary ktrace.out holds numbers where kdump text holds names; these tables turn them
into the names kdump prints, so both inputs give the same events (spec/kdump-format.md).

Syscalls: binary CALL and RET records carry the syscall number only; kdump names it from the
process ABI's table (libsysdecode, generated from sys/kern/syscalls.master) and prints
`[N]` for a number it does not know. The numbers below are the native FreeBSD ABI (the
same on amd64, i386 and arm64) up to FreeBSD 15: syscalls.master through 544 as in the
generated Go table (golang.org/x/sys zsysnum_freebsd_amd64.go), 545-587 checked entry by
entry against sys/kern/syscalls.master, 588-594 from two secondary tables that agree
(a SYS_* catalogue listing 561-602, and public-inbox's Syscall.pm, which has 577 and
593-594 for FreeBSD 15.0). Later numbers print as `[N]`, as an older kdump would.
Entries kept only for binary compatibility are named as the kernel's syscallnames[]
names them (`compat11.fstat`, `freebsd6_mmap`, ...).
"""

_TABLE = """
    0 syscall  1 exit  2 fork  3 read  4 write  5 open  6 close  7 wait4  9 link  10 unlink
    12 chdir  13 fchdir  14 compat11.mknod  15 chmod  16 chown  17 break  20 getpid  21 mount
    22 unmount  23 setuid  24 getuid  25 geteuid  26 ptrace  27 recvmsg  28 sendmsg
    29 recvfrom  30 accept  31 getpeername  32 getsockname  33 access  34 chflags  35 fchflags
    36 sync  37 kill  39 getppid  41 dup  42 pipe  43 getegid  44 profil  45 ktrace  47 getgid
    49 getlogin  50 setlogin  51 acct  53 sigaltstack  54 ioctl  55 reboot  56 revoke
    57 symlink  58 readlink  59 execve  60 umask  61 chroot  65 msync  66 vfork  69 sbrk
    70 sstk  72 vadvise  73 munmap  74 mprotect  75 madvise  78 mincore  79 getgroups
    80 setgroups  81 getpgrp  82 setpgid  83 setitimer  85 swapon  86 getitimer
    89 getdtablesize  90 dup2  92 fcntl  93 select  95 fsync  96 setpriority  97 socket
    98 connect  100 getpriority  104 bind  105 setsockopt  106 listen  116 gettimeofday
    117 getrusage  118 getsockopt  120 readv  121 writev  122 settimeofday  123 fchown
    124 fchmod  126 setreuid  127 setregid  128 rename  131 flock  132 mkfifo  133 sendto
    134 shutdown  135 socketpair  136 mkdir  137 rmdir  138 utimes  140 adjtime  147 setsid
    148 quotactl  154 nlm_syscall  155 nfssvc  160 lgetfh  161 getfh  165 sysarch  166 rtprio
    169 semsys  170 msgsys  171 shmsys  173 freebsd6_pread  174 freebsd6_pwrite  175 setfib
    176 ntp_adjtime  181 setgid  182 setegid  183 seteuid  188 compat11.stat
    189 compat11.fstat  190 compat11.lstat  191 pathconf  192 fpathconf  194 getrlimit
    195 setrlimit  196 compat11.getdirentries  197 freebsd6_mmap  198 __syscall
    199 freebsd6_lseek  200 freebsd6_truncate  201 freebsd6_ftruncate  202 __sysctl  203 mlock
    204 munlock  205 undelete  206 futimes  207 getpgid  209 poll  220 freebsd7___semctl
    221 semget  222 semop  224 freebsd7_msgctl  225 msgget  226 msgsnd  227 msgrcv  228 shmat
    229 freebsd7_shmctl  230 shmdt  231 shmget  232 clock_gettime  233 clock_settime
    234 clock_getres  235 ktimer_create  236 ktimer_delete  237 ktimer_settime
    238 ktimer_gettime  239 ktimer_getoverrun  240 nanosleep  241 ffclock_getcounter
    242 ffclock_setestimate  243 ffclock_getestimate  244 clock_nanosleep
    247 clock_getcpuclockid2  248 ntp_gettime  250 minherit  251 rfork  253 issetugid
    254 lchown  255 aio_read  256 aio_write  257 lio_listio  272 compat11.getdents  274 lchmod
    276 lutimes  278 compat11.nstat  279 compat11.nfstat  280 compat11.nlstat  289 preadv
    290 pwritev  298 fhopen  299 compat11.fhstat  300 modnext  301 modstat  302 modfnext
    303 modfind  304 kldload  305 kldunload  306 kldfind  307 kldnext  308 kldstat
    309 kldfirstmod  310 getsid  311 setresuid  312 setresgid  314 aio_return  315 aio_suspend
    316 aio_cancel  317 aio_error  321 yield  324 mlockall  325 munlockall  326 __getcwd
    327 sched_setparam  328 sched_getparam  329 sched_setscheduler  330 sched_getscheduler
    331 sched_yield  332 sched_get_priority_max  333 sched_get_priority_min
    334 sched_rr_get_interval  335 utrace  337 kldsym  338 jail  339 nnpfs_syscall
    340 sigprocmask  341 sigsuspend  343 sigpending  345 sigtimedwait  346 sigwaitinfo
    347 __acl_get_file  348 __acl_set_file  349 __acl_get_fd  350 __acl_set_fd
    351 __acl_delete_file  352 __acl_delete_fd  353 __acl_aclcheck_file  354 __acl_aclcheck_fd
    355 extattrctl  356 extattr_set_file  357 extattr_get_file  358 extattr_delete_file
    359 aio_waitcomplete  360 getresuid  361 getresgid  362 kqueue  363 compat11.kevent
    371 extattr_set_fd  372 extattr_get_fd  373 extattr_delete_fd  374 __setugid  376 eaccess
    377 afs3_syscall  378 nmount  384 __mac_get_proc  385 __mac_set_proc  386 __mac_get_fd
    387 __mac_get_file  388 __mac_set_fd  389 __mac_set_file  390 kenv  391 lchflags
    392 uuidgen  393 sendfile  394 mac_syscall  395 compat11.getfsstat  396 compat11.statfs
    397 compat11.fstatfs  398 compat11.fhstatfs  400 ksem_close  401 ksem_post  402 ksem_wait
    403 ksem_trywait  404 ksem_init  405 ksem_open  406 ksem_unlink  407 ksem_getvalue
    408 ksem_destroy  409 __mac_get_pid  410 __mac_get_link  411 __mac_set_link
    412 extattr_set_link  413 extattr_get_link  414 extattr_delete_link  415 __mac_execve
    416 sigaction  417 sigreturn  421 getcontext  422 setcontext  423 swapcontext
    424 freebsd13_swapoff  425 __acl_get_link  426 __acl_set_link  427 __acl_delete_link
    428 __acl_aclcheck_link  429 sigwait  430 thr_create  431 thr_exit  432 thr_self
    433 thr_kill  436 jail_attach  437 extattr_list_fd  438 extattr_list_file
    439 extattr_list_link  441 ksem_timedwait  442 thr_suspend  443 thr_wake  444 kldunloadf
    445 audit  446 auditon  447 getauid  448 setauid  449 getaudit  450 setaudit
    451 getaudit_addr  452 setaudit_addr  453 auditctl  454 _umtx_op  455 thr_new
    456 sigqueue  457 kmq_open  458 kmq_setattr  459 kmq_timedreceive  460 kmq_timedsend
    461 kmq_notify  462 kmq_unlink  463 abort2  464 thr_set_name  465 aio_fsync
    466 rtprio_thread  471 sctp_peeloff  472 sctp_generic_sendmsg
    473 sctp_generic_sendmsg_iov  474 sctp_generic_recvmsg  475 pread  476 pwrite  477 mmap
    478 lseek  479 truncate  480 ftruncate  481 thr_kill2  482 freebsd12_shm_open
    483 shm_unlink  484 cpuset  485 cpuset_setid  486 cpuset_getid  487 cpuset_getaffinity
    488 cpuset_setaffinity  489 faccessat  490 fchmodat  491 fchownat  492 fexecve
    493 compat11.fstatat  494 futimesat  495 linkat  496 mkdirat  497 mkfifoat
    498 compat11.mknodat  499 openat  500 readlinkat  501 renameat  502 symlinkat
    503 unlinkat  504 posix_openpt  505 gssd_syscall  506 jail_get  507 jail_set
    508 jail_remove  509 freebsd12_closefrom  510 __semctl  511 msgctl  512 shmctl
    513 lpathconf  515 __cap_rights_get  516 cap_enter  517 cap_getmode  518 pdfork
    519 pdkill  520 pdgetpid  522 pselect  523 getloginclass  524 setloginclass
    525 rctl_get_racct  526 rctl_get_rules  527 rctl_get_limits  528 rctl_add_rule
    529 rctl_remove_rule  530 posix_fallocate  531 posix_fadvise  532 wait6
    533 cap_rights_limit  534 cap_ioctls_limit  535 cap_ioctls_get  536 cap_fcntls_limit
    537 cap_fcntls_get  538 bindat  539 connectat  540 chflagsat  541 accept4  542 pipe2
    543 aio_mlock  544 procctl  545 ppoll  546 futimens  547 utimensat  550 fdatasync
    551 fstat  552 fstatat  553 fhstat  554 getdirentries  555 statfs  556 fstatfs
    557 getfsstat  558 fhstatfs  559 mknodat  560 kevent  561 cpuset_getdomain
    562 cpuset_setdomain  563 getrandom  564 getfhat  565 fhlink  566 fhlinkat  567 fhreadlink
    568 funlinkat  569 copy_file_range  570 __sysctlbyname  571 shm_open2  572 shm_rename
    573 sigfastblock  574 __realpathat  575 close_range  576 rpctls_syscall  577 __specialfd
    578 aio_writev  579 aio_readv  580 fspacectl  581 sched_getcpu  582 swapoff  583 kqueuex
    584 membarrier  585 timerfd_create  586 timerfd_gettime  587 timerfd_settime  588 kcmp
    589 getrlimitusage  590 fchroot  591 setcred  592 exterrctl  593 inotify_add_watch_at
    594 inotify_rm_watch
"""

SYSCALL_NAMES: dict[int, str] = {
    int(number): name
    for number, name in zip(_TABLE.split()[::2], _TABLE.split()[1::2], strict=True)
}


def syscall_name(number: int) -> str:
    """kdump's name for a syscall number: the table's name, else `[N]`."""
    return SYSCALL_NAMES.get(number, f"[{number}]")


# sys/signal.h: kdump prints `SIG` + the name, or `SIG N` for a number without one.
SIGNAL_NAMES = dict(
    enumerate(
        [
            "HUP",
            "INT",
            "QUIT",
            "ILL",
            "TRAP",
            "ABRT",
            "EMT",
            "FPE",
            "KILL",
            "BUS",
            "SEGV",
            "SYS",
            "PIPE",
            "ALRM",
            "TERM",
            "URG",
            "STOP",
            "TSTP",
            "CONT",
            "CHLD",
            "TTIN",
            "TTOU",
            "IO",
            "XCPU",
            "XFSZ",
            "VTALRM",
            "PROF",
            "WINCH",
            "INFO",
            "USR1",
            "USR2",
            "THR",
            "LIBRT",
        ],
        start=1,
    )
)


def signal_name(signo: int) -> str:
    name = SIGNAL_NAMES.get(signo)
    return f"SIG{name}" if name else f"SIG {signo}"


# si_code values (sys/signal.h): the generic SI_* codes first, then those of one signal.
_SI_CODES = {
    0: "SI_NOINFO",
    0x10001: "SI_USER",
    0x10002: "SI_QUEUE",
    0x10003: "SI_TIMER",
    0x10004: "SI_ASYNCIO",
    0x10005: "SI_MESGQ",
    0x10006: "SI_KERNEL",
    0x10007: "SI_LWP",
}
_SIGNAL_CODES = {
    4: "ILL_ILLOPC ILL_ILLOPN ILL_ILLADR ILL_ILLTRP ILL_PRVOPC ILL_PRVREG ILL_COPROC ILL_BADSTK",
    5: "TRAP_BRKPT TRAP_TRACE TRAP_DTRACE TRAP_CAP",
    8: "FPE_INTOVF FPE_INTDIV FPE_FLTDIV FPE_FLTOVF FPE_FLTUND FPE_FLTRES FPE_FLTINV FPE_FLTSUB "
    "FPE_FLTIDO",
    10: "BUS_ADRALN BUS_ADRERR BUS_OBJERR",
    11: "SEGV_MAPERR SEGV_ACCERR",
    20: "CLD_EXITED CLD_KILLED CLD_DUMPED CLD_TRAPPED CLD_STOPPED CLD_CONTINUED",
    23: "POLL_IN POLL_OUT POLL_MSG POLL_ERR POLL_PRI POLL_HUP",
}
_SIGNAL_CODE_NAMES = {
    (signo, code): name
    for signo, names in _SIGNAL_CODES.items()
    for code, name in enumerate(names.split(), start=1)
} | {(10, 100): "BUS_OOMERR", (11, 100): "SEGV_PKUERR"}


def signal_code(signo: int, code: int) -> str:
    """kdump's `code=` text: sysdecode_sigcode(), else `<invalid=%#x>`."""
    name = _SI_CODES.get(code) or _SIGNAL_CODE_NAMES.get((signo, code))
    return name or f"<invalid={c_hex(code)}>"


# vm/vm_param.h KERN_* results of vm_fault(), for PRET records.
FAULT_RESULTS = [
    "KERN_SUCCESS",
    "KERN_INVALID_ADDRESS",
    "KERN_PROTECTION_FAILURE",
    "KERN_NO_SPACE",
    "KERN_INVALID_ARGUMENT",
    "KERN_FAILURE",
    "KERN_RESOURCE_SHORTAGE",
    "KERN_NOT_RECEIVER",
    "KERN_NO_ACCESS",
    "KERN_OUT_OF_BOUNDS",
    "KERN_RESTART",
]


def c_hex(value: int) -> str:
    """printf("%#x"): `0` for zero, else 0x and lower-case digits."""
    return f"{value:#x}" if value else "0"
