/*
 * The sub-device agent: a helper process that keeps the two capabilities carving needs after
 * the daemon has dropped all of its own (backend.h: backend_agent_start).
 *
 * Carving a sub-device writes root's sysfs attributes of the region (seed align, mapping,
 * size, create, delete, bind) and reads root's (mappingN/start, resource): CAP_DAC_OVERRIDE.
 * The new device node is root's 0600 until something hands it over: CAP_CHOWN. The daemon,
 * which parses every client's frames, keeps neither. The agent is forked before the daemon
 * drops them (no thread exists yet), keeps only those two, closes every other descriptor
 * (the listening socket, the pool device, the journal's), dies with the daemon
 * (PR_SET_PDEATHSIG), and serves subdev-kernel.h's four requests over a SOCK_SEQPACKET
 * socketpair, one at a time, each checked against the scope fixed when it started.
 *
 * The daemon's side is synchronous under a mutex: the carving worker, the zeroing worker and
 * start-up share one agent; every request is short but a carve (seconds under emulation), which
 * only the carving worker asks for.
 */
#include "backend-internal.h"
#include "subdev-kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct backend_agent {
	int fd;
	pid_t pid;
	pthread_mutex_t lock;
};

/* Keeps CAP_DAC_OVERRIDE and CAP_CHOWN (where the process has them), nothing else. */
static int keep_carving_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	uint32_t keep = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_CHOWN);

	if (geteuid() == 0)
		return 0; /* root (the lab, a hand-started daemon): as the daemon itself */
	if (syscall(SYS_capget, &h, data) < 0)
		return -errno;
	data[0].permitted &= keep;
	data[0].effective = data[0].permitted;
	data[0].inheritable = 0;
	data[1] = (struct __user_cap_data_struct){ 0 };
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capset, &h, data) < 0)
		return -errno;
	return 0;
}

static int send_all(int fd, const void *buf, size_t len)
{
	ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

/* Sends a reply and, for LIST, its entries in chunks. */
static int send_reply(int fd, const struct subdev_reply *reply, const struct subdev_dev *devs)
{
	int r = send_all(fd, reply, sizeof(*reply));

	for (uint32_t i = 0; r == 0 && i < reply->count; i += SUBDEV_LIST_CHUNK) {
		uint32_t n = reply->count - i < SUBDEV_LIST_CHUNK ? reply->count - i : SUBDEV_LIST_CHUNK;

		r = send_all(fd, devs + i, n * sizeof(*devs));
	}
	return r;
}

_noreturn_ static void agent_main(int fd, const char *device_path, uid_t uid, gid_t gid)
{
	struct subdev_kernel k;
	int r;

	(void)prctl(PR_SET_NAME, "daxpoold-agent", 0, 0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		_exit(1);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	unsetenv("NOTIFY_SOCKET");
	/* Only the socketpair (as 3) and stderr (the log) stay open. */
	if (fd != 3) {
		if (dup2(fd, 3) < 0)
			_exit(1);
		close(fd);
	}
	if (syscall(SYS_close_range, 4u, ~0u, 0u) < 0)
		for (int i = 4; i < 65536; i++)
			close(i);
	if (keep_carving_caps() < 0)
		_exit(1);
	r = subdev_kernel_init(&k, device_path, uid, gid);
	for (;;) {
		struct subdev_req req;
		struct subdev_reply reply;
		struct subdev_dev *devs = NULL;
		ssize_t n = recv(3, &req, sizeof(req), MSG_TRUNC);

		if (n == 0)
			_exit(0); /* the daemon closed its end */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (r < 0) {
			reply = (struct subdev_reply){ .status = r };
			snprintf(reply.msg, sizeof(reply.msg), "%s", backend_errormsg());
		} else if ((size_t)n != sizeof(req)) {
			reply = (struct subdev_reply){ .status = -EBADMSG };
			snprintf(reply.msg, sizeof(reply.msg), "sub-device agent: a request of %zd bytes, "
				 "not %zu", n, sizeof(req));
		} else {
			subdev_kernel_do(&k, &req, &reply, &devs);
		}
		if (send_reply(3, &reply, devs) < 0)
			_exit(1);
		free(devs);
	}
}

/* Whether the device-dax device at path lies on a region that can be carved (its region has
 * a create attribute; a world-readable fact). */
static bool on_dynamic_region(const char *path)
{
	char attr[96];
	struct stat st;

	if (stat(path, &st) < 0 || !S_ISCHR(st.st_mode))
		return false;
	snprintf(attr, sizeof(attr), "/sys/dev/char/%u:%u/../dax_region/create", major(st.st_rdev),
		 minor(st.st_rdev));
	return access(attr, F_OK) == 0;
}

int backend_agent_start(const char *device_path, struct backend_agent **ret)
{
	*ret = NULL;
	if (!device_path)
		return backend_err(-EINVAL, "sub-device agent: no device");
	if (!on_dynamic_region(device_path))
		return 0;
	return subdev_agent_spawn(device_path, ret);
}

int subdev_agent_spawn(const char *device_path, struct backend_agent **ret)
{
	struct backend_agent *a;
	int sv[2];
	pid_t pid;

	*ret = NULL;
	a = backend_mem_calloc(1, sizeof(*a));
	if (!a)
		return backend_err(-ENOMEM, "out of memory");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(a);
		return backend_err(negative_errno(), "sub-device agent: socketpair: %m");
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int r = backend_err(negative_errno(), "sub-device agent: fork: %m");

		close(sv[0]);
		close(sv[1]);
		free(a);
		return r;
	}
	if (pid == 0) {
		close(sv[0]);
		agent_main(sv[1], device_path, geteuid(), getegid());
	}
	close(sv[1]);
	a->fd = sv[0];
	a->pid = pid;
	pthread_mutex_init(&a->lock, NULL);
	*ret = a;
	return 0;
}

int backend_agent_pid(const struct backend_agent *a)
{
	return a ? a->pid : -1;
}

void backend_agent_stop(struct backend_agent **ap)
{
	struct backend_agent *a = ap ? *ap : NULL;

	if (!a)
		return;
	close(a->fd); /* the agent reads end-of-file and exits */
	while (waitpid(a->pid, NULL, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_destroy(&a->lock);
	free(a);
	*ap = NULL;
}

static int recv_exact(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(fd, buf, len, MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	return (size_t)n == len ? 0 : -EBADMSG;
}

static int agent_call(struct backend_agent *a, const struct subdev_req *req,
		      struct subdev_reply *reply, struct subdev_dev **ret_devs)
{
	struct subdev_dev *devs = NULL;
	int r;

	pthread_mutex_lock(&a->lock);
	r = send_all(a->fd, req, sizeof(*req));
	if (r == 0)
		r = recv_exact(a->fd, reply, sizeof(*reply));
	if (r == 0 && reply->count) {
		devs = backend_mem_calloc(reply->count, sizeof(*devs));
		for (uint32_t i = 0; r == 0 && i < reply->count; i += SUBDEV_LIST_CHUNK) {
			uint32_t n = reply->count - i < SUBDEV_LIST_CHUNK ? reply->count - i
									  : SUBDEV_LIST_CHUNK;
			struct subdev_dev chunk[SUBDEV_LIST_CHUNK];

			r = recv_exact(a->fd, chunk, n * sizeof(*chunk));
			if (r == 0 && devs)
				memcpy(devs + i, chunk, n * sizeof(*chunk));
		}
		if (r == 0 && !devs)
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&a->lock);
	if (r < 0) {
		free(devs);
		return backend_err(r, "the sub-device agent (pid %d) does not answer: %s", (int)a->pid,
				   strerror(-r));
	}
	reply->msg[sizeof(reply->msg) - 1] = '\0';
	*ret_devs = devs;
	return 0;
}

int subdev_call(struct backend_agent *a, struct subdev_kernel *local, const struct subdev_req *req,
		struct subdev_reply *reply, struct subdev_dev **ret_devs)
{
	*ret_devs = NULL;
	if (a) {
		int r = agent_call(a, req, reply, ret_devs);

		if (r < 0)
			return r;
	} else {
		subdev_kernel_do(local, req, reply, ret_devs);
	}
	if (reply->status < 0) {
		free(*ret_devs);
		*ret_devs = NULL;
		return backend_err(reply->status, "%s", reply->msg);
	}
	return 0;
}
