#include <rte_ethdev.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include "shim.h"

uint16_t shim_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{ return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts); }

uint16_t shim_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{ return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts); }

struct rte_mbuf *shim_rte_pktmbuf_alloc(struct rte_mempool *mp)
{ return rte_pktmbuf_alloc(mp); }

int shim_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned count)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, count); }

void shim_rte_pktmbuf_free(struct rte_mbuf *m)
{ rte_pktmbuf_free(m); }

void shim_rte_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned count)
{ rte_pktmbuf_free_bulk(mbufs, count); }

unsigned shim_rte_ring_sp_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned n)
{ return rte_ring_sp_enqueue_burst(r, obj_table, n, NULL); }

unsigned shim_rte_ring_sc_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned n)
{ return rte_ring_sc_dequeue_burst(r, obj_table, n, NULL); }

unsigned shim_rte_ring_mp_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned n)
{ return rte_ring_mp_enqueue_burst(r, obj_table, n, NULL); }

unsigned shim_rte_ring_mc_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned n)
{ return rte_ring_mc_dequeue_burst(r, obj_table, n, NULL); }

unsigned shim_rte_ring_count(const struct rte_ring *r)
{ return rte_ring_count(r); }

unsigned shim_rte_lcore_id(void)
{ return rte_lcore_id(); }

uint64_t shim_rte_rdtsc(void)
{ return rte_rdtsc(); }

int shim_rte_errno(void)
{ return rte_errno; }

/* ---- intel-ipsec-mb ---------------------------------------------------------------- */
#include <stdlib.h>
#include <string.h>
#include <intel-ipsec-mb.h>

void *shim_imb_gcm_mgr_new(void)
{
        IMB_MGR *m = alloc_mb_mgr(0);
        IMB_ARCH arch;
        if (m == NULL)
                return NULL;
        init_mb_mgr_auto(m, &arch);
        if (imb_get_errno(m) != 0) {
                free_mb_mgr(m);
                return NULL;
        }
        return m;
}

size_t shim_imb_gcm_key_size(void)
{
        return sizeof(struct gcm_key_data);
}

int shim_imb_gcm_key_expand(void *mgr, const uint8_t *key, size_t key_len, void *key_data)
{
        if (key_len == 16)
                IMB_AES128_GCM_PRE((IMB_MGR *)mgr, key, (struct gcm_key_data *)key_data);
        else if (key_len == 32)
                IMB_AES256_GCM_PRE((IMB_MGR *)mgr, key, (struct gcm_key_data *)key_data);
        else
                return -1;
        return 0;
}

/* Wipes a GCM context after its packet: it holds E(K, J0) and the last block's keystream.
 * Volatile 8-byte stores, inlined: explicit_bzero's call cost about 13 cycles a packet,
 * 3 % of a 64-byte encap (benches/NOTES.md, session 11), and the stores cannot be elided
 * either way. */
static inline void wipe_gcm_context(struct gcm_context_data *ctx)
{
        _Static_assert(sizeof(*ctx) % sizeof(uint64_t) == 0, "whole words");
        volatile uint64_t *w = (volatile uint64_t *)ctx;
        for (size_t i = 0; i < sizeof(*ctx) / sizeof(uint64_t); i++)
                w[i] = 0;
}

void shim_imb_gcm_enc(void *mgr, size_t key_len, const void *key_data, uint8_t *buf, uint64_t len,
                      const uint8_t *iv12, const uint8_t *aad, uint64_t aad_len, uint8_t *tag16)
{
        struct gcm_context_data ctx;
        if (key_len == 16)
                IMB_AES128_GCM_ENC((IMB_MGR *)mgr, key_data, &ctx, buf, buf, len, iv12, aad, aad_len, tag16, 16);
        else
                IMB_AES256_GCM_ENC((IMB_MGR *)mgr, key_data, &ctx, buf, buf, len, iv12, aad, aad_len, tag16, 16);
        wipe_gcm_context(&ctx);
}

void shim_imb_gcm_dec(void *mgr, size_t key_len, const void *key_data, uint8_t *buf, uint64_t len,
                      const uint8_t *iv12, const uint8_t *aad, uint64_t aad_len, uint8_t *tag16)
{
        struct gcm_context_data ctx;
        if (key_len == 16)
                IMB_AES128_GCM_DEC((IMB_MGR *)mgr, key_data, &ctx, buf, buf, len, iv12, aad, aad_len, tag16, 16);
        else
                IMB_AES256_GCM_DEC((IMB_MGR *)mgr, key_data, &ctx, buf, buf, len, iv12, aad, aad_len, tag16, 16);
        wipe_gcm_context(&ctx);
}
