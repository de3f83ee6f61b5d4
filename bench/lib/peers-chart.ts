// The peers chart: latency each gateway adds to Envoy alone, per percentile, one panel per
// open-loop rate and one for streaming time to first token, LM Gate and AI Gateway in the same
// colours throughout (bench/lib/chart.ts draws it).
import { envoyShort, type Panel, renderPanels } from './chart.ts';
import { PEER_LABEL, PEERS, type Peer, type PeersResult } from './peers-result.ts';

const COLOR: Record<Peer, string> = { governed: '#1f77b4', ai_gateway: '#ff7f0e' };

export function renderPeersChart(r: PeersResult): string {
  const panels: Panel[] = r.openLoop.map((o) => ({
    title: `${o.rateRps} req/s per route: added latency`,
    series: PEERS.map((p) => ({ label: PEER_LABEL[p], values: o[p].addedMs, color: COLOR[p] })),
  }));
  panels.push({
    title: 'streaming: time to first token added',
    series: PEERS.flatMap((p) => {
      const s = r.streaming.routes.find((x) => x.route === p)?.ttftAddedMs;
      return s ? [{ label: PEER_LABEL[p], values: s, color: COLOR[p] }] : [];
    }),
  });
  const e = r.environment;
  return renderPanels(
    `LM Gate and Envoy AI Gateway ${r.aiGateway.version}: latency added to Envoy alone (${r.kind} run, ${r.startedAt.slice(0, 10)})`,
    `${e.cores} cores, ${e.cpuModel}; Envoy ${envoyShort(e.envoy)}; same Envoy, same slices; commit ${r.commit}.`,
    panels,
  );
}
