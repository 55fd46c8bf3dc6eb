import type { NodeConfig, PeerConfig, TargetVaultConfig, VaultConfig } from './types.js';

/** The vaults this node is the source of, in file order. */
export function vaultsAsSource(config: NodeConfig): VaultConfig[] {
  return config.vaults.filter((vault) => vault.source === config.node.id);
}

/** The vaults this node is a target of, each with this node's replica path. */
export function vaultsAsTarget(config: NodeConfig): TargetVaultConfig[] {
  const out: TargetVaultConfig[] = [];
  for (const vault of config.vaults) {
    const target = vault.targets.find((t) => t.node === config.node.id);
    if (target !== undefined) out.push({ ...vault, replica: target.replica });
  }
  return out;
}

/** The peer with this id, or undefined (this node itself is never a peer). */
export function peerById(config: NodeConfig, id: string): PeerConfig | undefined {
  return config.peers.find((peer) => peer.id === id);
}
