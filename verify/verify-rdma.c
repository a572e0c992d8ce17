/* daxpoolctl verify: libibverbs loopback (verify/verify-rdma.h). */
#include "verify-rdma.h"
#include "macro.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DAXPOOL_HAVE_IBVERBS
#include <infiniband/verbs.h>
#include <time.h>

#define LBUF_SIZE 4096

struct vrdma {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp[2];
	struct ibv_mr *lmr, *mr; /* local bounce buffer; the slice's MR */
	void *lbuf;
	char name[64];
	uint8_t port;
	int gid_index;
	union ibv_gid gid;
	enum ibv_mtu mtu;
};

void vrdma_delete(struct vrdma **rp)
{
	struct vrdma *r;

	if (!rp || !*rp)
		return;
	r = *rp;
	if (r->mr)
		ibv_dereg_mr(r->mr);
	if (r->lmr)
		ibv_dereg_mr(r->lmr);
	for (int i = 0; i < 2; i++)
		if (r->qp[i])
			ibv_destroy_qp(r->qp[i]);
	if (r->cq)
		ibv_destroy_cq(r->cq);
	if (r->pd)
		ibv_dealloc_pd(r->pd);
	if (r->ctx)
		ibv_close_device(r->ctx);
	free(r->lbuf);
	free(r);
	*rp = NULL;
}

const char *vrdma_device(const struct vrdma *r)
{
	return r->name;
}

/* RoCE needs a GRH: pick a GID, preferring the IPv4-mapped one (the netdev's address). */
static int pick_gid(struct vrdma *r, int table_len)
{
	int best = -1;

	for (int i = 0; i < table_len; i++) {
		union ibv_gid g;
		static const uint8_t zero[16];
		static const uint8_t v4prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (ibv_query_gid(r->ctx, r->port, i, &g) != 0 || memcmp(g.raw, zero, 16) == 0)
			continue;
		if (best < 0 || memcmp(g.raw, v4prefix, 12) == 0) {
			best = i;
			r->gid = g;
			if (memcmp(g.raw, v4prefix, 12) == 0)
				break;
		}
	}
	r->gid_index = best;
	return best >= 0 ? 0 : -ENOENT;
}

static int connect_qp(struct vrdma *r, struct ibv_qp *qp, uint32_t remote_qpn)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = 0,
		.port_num = r->port,
		.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ,
	};
	int e;

	e = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	if (e)
		return -e;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = r->mtu;
	a.dest_qp_num = remote_qpn;
	a.rq_psn = 0;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.is_global = 1;
	a.ah_attr.grh.dgid = r->gid;
	a.ah_attr.grh.sgid_index = (uint8_t)r->gid_index;
	a.ah_attr.grh.hop_limit = 1;
	a.ah_attr.port_num = r->port;
	e = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
					  IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
	if (e)
		return -e;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = 0;
	a.max_rd_atomic = 1;
	e = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
					  IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
	return -e;
}

int vrdma_new(struct vrdma **ret, char *reason, size_t size)
{
	struct ibv_device **list;
	struct vrdma *r;
	int n = 0, e;

	list = ibv_get_device_list(&n);
	if (!list || n == 0) {
		if (list)
			ibv_free_device_list(list);
		snprintf(reason, size, "no RDMA device (soft-RoCE: modprobe rdma_rxe; rdma link add rxe0 "
				       "type rxe netdev IFACE)");
		return -ENODEV;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		ibv_free_device_list(list);
		return -ENOMEM;
	}
	r->port = 1;
	for (int i = 0; i < n && !r->ctx; i++) {
		struct ibv_port_attr pa;

		r->ctx = ibv_open_device(list[i]);
		if (!r->ctx)
			continue;
		if (ibv_query_port(r->ctx, r->port, &pa) != 0 || pa.state != IBV_PORT_ACTIVE ||
		    pick_gid(r, pa.gid_tbl_len) < 0) {
			ibv_close_device(r->ctx);
			r->ctx = NULL;
			continue;
		}
		r->mtu = pa.active_mtu;
		snprintf(r->name, sizeof(r->name), "%s", ibv_get_device_name(list[i]));
	}
	ibv_free_device_list(list);
	if (!r->ctx) {
		free(r);
		snprintf(reason, size, "no RDMA device with an active port and a GID (is the netdev up "
				       "with an address?)");
		return -ENODEV;
	}
	r->pd = ibv_alloc_pd(r->ctx);
	r->cq = r->pd ? ibv_create_cq(r->ctx, 16, NULL, NULL, 0) : NULL;
	r->lbuf = aligned_alloc(4096, LBUF_SIZE);
	if (!r->pd || !r->cq || !r->lbuf)
		goto fail;
	memset(r->lbuf, 0, LBUF_SIZE);
	r->lmr = ibv_reg_mr(r->pd, r->lbuf, LBUF_SIZE, IBV_ACCESS_LOCAL_WRITE);
	if (!r->lmr)
		goto fail;
	for (int i = 0; i < 2; i++) {
		struct ibv_qp_init_attr qa = {
			.send_cq = r->cq,
			.recv_cq = r->cq,
			.cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1, .max_recv_sge = 1 },
			.qp_type = IBV_QPT_RC,
		};

		r->qp[i] = ibv_create_qp(r->pd, &qa);
		if (!r->qp[i])
			goto fail;
	}
	e = connect_qp(r, r->qp[0], r->qp[1]->qp_num);
	if (e == 0)
		e = connect_qp(r, r->qp[1], r->qp[0]->qp_num);
	if (e) {
		snprintf(reason, size, "cannot connect the loopback queue pairs on %s: %s", r->name,
			 strerror(-e));
		vrdma_delete(&r);
		return e;
	}
	*ret = r;
	return 0;
fail:
	e = errno ? -errno : -ENOMEM;
	snprintf(reason, size, "setting up %s (pd, cq, qp, bounce MR) failed: %s", r->name, strerror(-e));
	vrdma_delete(&r);
	return e;
}

int vrdma_reg(struct vrdma *r, void *addr, size_t len, char *err, size_t errsize)
{
	if (r->mr)
		return -EBUSY;
	r->mr = ibv_reg_mr(r->pd, addr, len,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	if (!r->mr) {
		int e = errno ? -errno : -EIO;

		snprintf(err, errsize, "ibv_reg_mr(%zu bytes) on %s: %s", len, r->name, strerror(-e));
		return e;
	}
	return 0;
}

int vrdma_dereg(struct vrdma *r)
{
	int e;

	if (!r->mr)
		return -EINVAL;
	e = ibv_dereg_mr(r->mr);
	r->mr = NULL;
	return -e;
}

/* Posts one signalled work request on qp[0] (its peer qp[1] serves it) and waits for it. */
static int post_wait(struct vrdma *r, enum ibv_wr_opcode op, uint64_t off, size_t len, char *err,
		     size_t errsize)
{
	struct ibv_sge sge = { .addr = (uintptr_t)r->lbuf, .length = (uint32_t)len, .lkey = r->lmr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = 1,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	struct ibv_wc wc;
	struct timespec t0, t;
	int e, n;

	if (!r->mr || len > LBUF_SIZE || off + len > r->mr->length)
		return -EINVAL;
	wr.wr.rdma.remote_addr = (uintptr_t)r->mr->addr + off;
	wr.wr.rdma.rkey = r->mr->rkey;
	e = ibv_post_send(r->qp[0], &wr, &bad);
	if (e) {
		snprintf(err, errsize, "ibv_post_send: %s", strerror(e));
		return -e;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		n = ibv_poll_cq(r->cq, 1, &wc);
		if (n < 0) {
			snprintf(err, errsize, "ibv_poll_cq failed");
			return -EIO;
		}
		if (n == 1)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 20) {
			snprintf(err, errsize, "no completion within 20 s");
			return -ETIMEDOUT;
		}
	}
	if (wc.status != IBV_WC_SUCCESS) {
		snprintf(err, errsize, "completion status %s", ibv_wc_status_str(wc.status));
		return -EIO;
	}
	return 0;
}

int vrdma_write(struct vrdma *r, uint64_t off, const void *data, size_t len, char *err, size_t errsize)
{
	if (len > LBUF_SIZE)
		return -EINVAL;
	memcpy(r->lbuf, data, len);
	return post_wait(r, IBV_WR_RDMA_WRITE, off, len, err, errsize);
}

int vrdma_read(struct vrdma *r, uint64_t off, void *out, size_t len, char *err, size_t errsize)
{
	int e;

	if (len > LBUF_SIZE)
		return -EINVAL;
	memset(r->lbuf, 0, len);
	e = post_wait(r, IBV_WR_RDMA_READ, off, len, err, errsize);
	if (e == 0)
		memcpy(out, r->lbuf, len);
	return e;
}
#else
int vrdma_new(struct vrdma **ret, char *reason, size_t size)
{
	(void)ret;
	snprintf(reason, size, "daxpoolctl was built without libibverbs (apt-get install libibverbs-dev)");
	return -EOPNOTSUPP;
}
void vrdma_delete(struct vrdma **r)
{
	(void)r;
}
const char *vrdma_device(const struct vrdma *r)
{
	(void)r;
	return "";
}
int vrdma_reg(struct vrdma *r, void *addr, size_t len, char *err, size_t errsize)
{
	(void)r, (void)addr, (void)len, (void)err, (void)errsize;
	return -EOPNOTSUPP;
}
int vrdma_dereg(struct vrdma *r)
{
	(void)r;
	return -EOPNOTSUPP;
}
int vrdma_write(struct vrdma *r, uint64_t off, const void *data, size_t len, char *err, size_t errsize)
{
	(void)r, (void)off, (void)data, (void)len, (void)err, (void)errsize;
	return -EOPNOTSUPP;
}
int vrdma_read(struct vrdma *r, uint64_t off, void *out, size_t len, char *err, size_t errsize)
{
	(void)r, (void)off, (void)out, (void)len, (void)err, (void)errsize;
	return -EOPNOTSUPP;
}
#endif
