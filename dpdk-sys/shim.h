/* Non-inline wrappers over DPDK's static-inline fast-path functions, so that Rust can call
 * them. Each is a one-line forward; the compiler inlines the DPDK body into it. */
#ifndef IPSEC_GATEWAY_DPDK_SHIM_H
#define IPSEC_GATEWAY_DPDK_SHIM_H
#include <stdint.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

uint16_t shim_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
uint16_t shim_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
struct rte_mbuf *shim_rte_pktmbuf_alloc(struct rte_mempool *mp);
int shim_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count);
void shim_rte_pktmbuf_free(struct rte_mbuf *m);
void shim_rte_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned count);
unsigned shim_rte_ring_sp_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned n);
unsigned shim_rte_ring_sc_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned n);
unsigned shim_rte_ring_mp_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned n);
unsigned shim_rte_ring_mc_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned n);
unsigned shim_rte_ring_count(const struct rte_ring *r);
unsigned shim_rte_lcore_id(void);
uint64_t shim_rte_rdtsc(void);
int shim_rte_errno(void);
#endif

/* intel-ipsec-mb (libIPSec_MB): AES-GCM through the direct API. The manager is only a table
 * of function pointers chosen for this CPU; all per-call state lives in the caller's context,
 * so one manager serves every lcore. */
#include <stddef.h>
void *shim_imb_gcm_mgr_new(void);
/* sizeof(struct gcm_key_data): the caller provides that much memory, 64-byte aligned */
size_t shim_imb_gcm_key_size(void);
/* Expands an AES-128 or AES-256 key (key_len 16 or 32) into key_data; -1 for another length. */
int shim_imb_gcm_key_expand(void *mgr, const uint8_t *key, size_t key_len, void *key_data);
void shim_imb_gcm_enc(void *mgr, size_t key_len, const void *key_data, uint8_t *buf, uint64_t len,
                      const uint8_t *iv12, const uint8_t *aad, uint64_t aad_len, uint8_t *tag16);
void shim_imb_gcm_dec(void *mgr, size_t key_len, const void *key_data, uint8_t *buf, uint64_t len,
                      const uint8_t *iv12, const uint8_t *aad, uint64_t aad_len, uint8_t *tag16);
