/* daxpoolctl verify: a real RDMA memory registration (libibverbs) on a slice, and RDMA WRITE and
 * READ into it over two RC queue pairs of one device connected to each other (loopback). In the
 * lab the device is soft-RoCE (rdma_rxe) on a dummy netdev: nothing leaves the machine. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct vrdma;

/* Opens the first RDMA device with an active port and connects the queue pairs. Without a
 * device (or without libibverbs at build time) returns a negative errno and why in reason. */
int vrdma_new(struct vrdma **ret, char *reason, size_t size);
void vrdma_delete(struct vrdma **r);

/* The device's name ("rxe0"). */
const char *vrdma_device(const struct vrdma *r);

/* ibv_reg_mr on [addr, addr+len) with remote read/write access: a FOLL_LONGTERM pin. One MR at a
 * time. err receives the reason on failure. */
int vrdma_reg(struct vrdma *r, void *addr, size_t len, char *err, size_t errsize);
/* ibv_dereg_mr: the kernel unpins. */
int vrdma_dereg(struct vrdma *r);

/* RDMA WRITE of len (<= 4096) bytes of data to offset off of the MR, and RDMA READ back from it;
 * both wait for their completion. */
int vrdma_write(struct vrdma *r, uint64_t off, const void *data, size_t len, char *err, size_t errsize);
int vrdma_read(struct vrdma *r, uint64_t off, void *out, size_t len, char *err, size_t errsize);
