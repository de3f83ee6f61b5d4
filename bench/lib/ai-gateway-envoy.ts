// How Envoy AI Gateway's extproc is configured when it runs without its controller: the filter
// config file it reads (its internal/filterapi format at the pinned version) and the Envoy
// filters, route metadata and clusters it expects, as its controller generates them
// (internal/extensionserver) and its data-plane tests write them by hand (tests/data-plane).
// Pure functions over plain objects, used by bench/lib/topology.ts to build the bench Envoy.
type Json = Record<string, any>;

/** What the Envoy config needs of a running AI Gateway extproc (bench/lib/ai-gateway.ts). */
export interface ExtProcPeer {
  name: string;
  grpcPort: number;
}

/** The route name and backend name the filter config and Envoy's metadata agree on (the
 * controller derives them from the AIGatewayRoute and AIServiceBackend; any strings will do). */
export const AIGW_ROUTE_NAME = 'bench/ai-gateway';
export const AIGW_BACKEND_NAME = 'bench/mock-model';
/** The dynamic-metadata namespace the extproc writes (aigv1b1.AIGatewayFilterMetadataNamespace)
 * and the keys our llmRequestCosts put there. */
export const AIGW_METADATA_NAMESPACE = 'io.envoy.ai_gateway';
export const AIGW_COST_KEYS = { input: 'llm_input_token', output: 'llm_output_token', total: 'llm_total_token' };

/** The extproc's config file (internal/filterapi.Config): one OpenAI-schema backend, our mock,
 * and token metering on: route-scoped llmRequestCosts for input, output and total tokens, as an
 * AIGatewayRoute's spec.llmRequestCosts produce. At the end of each response the extproc puts
 * them in Envoy's dynamic metadata (io.envoy.ai_gateway), where a rate-limit or access-log
 * filter reads them; it also records gen_ai token-usage metrics either way. */
export function aiGatewayFilterConfig(version: string): Json {
  return {
    version,
    uuid: 'lm-gate-bench',
    backends: [{ name: AIGW_BACKEND_NAME, schema: { name: 'OpenAI', prefix: 'v1' } }],
    llmRequestCosts: [
      { metadataKey: AIGW_COST_KEYS.input, routeName: AIGW_ROUTE_NAME, type: 'InputToken' },
      { metadataKey: AIGW_COST_KEYS.output, routeName: AIGW_ROUTE_NAME, type: 'OutputToken' },
      { metadataKey: AIGW_COST_KEYS.total, routeName: AIGW_ROUTE_NAME, type: 'TotalToken' },
    ],
  };
}

/** Its gRPC cluster: HTTP/2 with the window sizes its controller sets (Envoy Gateway's), and
 * the same gRPC health check as LM Gate's clusters so the bench waits for it the same way. */
export function aiGatewayCluster(name: string, grpcPort: number, template: Json): Json {
  const c = structuredClone(template);
  c.name = name;
  c.load_assignment.cluster_name = name;
  c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = grpcPort;
  c.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config = {
    http2_protocol_options: { initial_connection_window_size: 1048576, initial_stream_window_size: 65536 },
  };
  return c;
}

/**
 * Turns a clone of our listener into an AI Gateway listener, and returns the model cluster it
 * routes to. Two ext_proc filters, as its controller configures them (internal/extensionserver
 * at the pinned version) and its data-plane tests write them by hand (tests/data-plane):
 *
 * - Router level, in the HTTP connection manager, before the router: headers and the BUFFERED
 *   request body (it parses the model and stream flag, sets x-ai-eg-model and clears the route
 *   cache), response headers and the response body BUFFERED, switched to STREAMED by
 *   mode_override for a 200 stream (allow_mode_override). This is where usage is read and the
 *   cost metadata written. No request_attributes: the extproc tells the two filters apart by
 *   whether attributes came with the headers.
 * - Upstream level, in the model cluster's upstream HTTP filters: request headers only, with the
 *   attributes naming the backend (upstream host metadata aigateway.envoy.io
 *   per_route_rule_backend_name, or the cluster's) and the route (route metadata aigw_route_name):
 *   it picks the backend, translates the request (OpenAI to OpenAI: the path) and injects
 *   backend auth. Then header_mutation restores content-length from metadata when a body was
 *   replaced, and upstream_codec, which must end the chain.
 *
 * The route carries aigateway.envoy.io aigw_route_name, which scopes llmRequestCosts; both
 * filters send and receive metadata under io.envoy.ai_gateway. Timeouts are its controller's
 * (10 s per message, 30 s gRPC); failure_mode_allow false, as for LM Gate.
 */
export function aiGatewayListener(listener: Json, extProcCluster: string, modelCluster: Json): { modelCluster: Json } {
  const hcm = listener.filter_chains[0].filters[0].typed_config;
  const i = hcm.http_filters.findIndex((f: Json) => f.name === 'envoy.filters.http.ext_proc');
  const grpc = { envoy_grpc: { cluster_name: extProcCluster }, timeout: '30s' };
  const metadata = { receiving_namespaces: { untyped: [AIGW_METADATA_NAMESPACE] } };
  hcm.http_filters[i] = {
    name: 'envoy.filters.http.ext_proc/aigateway',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
      grpc_service: { envoy_grpc: { cluster_name: extProcCluster } },
      failure_mode_allow: false,
      message_timeout: '10s',
      allow_mode_override: true,
      processing_mode: {
        request_header_mode: 'SEND',
        request_body_mode: 'BUFFERED',
        request_trailer_mode: 'SKIP',
        response_header_mode: 'SEND',
        response_body_mode: 'BUFFERED',
        response_trailer_mode: 'SKIP',
      },
      metadata_options: metadata,
    },
  };
  const name = `model_server_${listener.name}`;
  for (const vh of hcm.route_config.virtual_hosts) {
    for (const rt of vh.routes) {
      rt.route.cluster = name;
      rt.metadata = { filter_metadata: { 'aigateway.envoy.io': { aigw_route_name: AIGW_ROUTE_NAME } } };
    }
  }
  const c = structuredClone(modelCluster);
  c.name = name;
  c.load_assignment.cluster_name = name;
  c.load_assignment.endpoints[0].lb_endpoints[0].metadata = {
    filter_metadata: { 'aigateway.envoy.io': { per_route_rule_backend_name: AIGW_BACKEND_NAME } },
  };
  c.typed_extension_protocol_options = {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http_protocol_options: {} },
      http_filters: [
        {
          name: 'envoy.filters.http.ext_proc/aigateway',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
            grpc_service: grpc,
            message_timeout: '10s',
            allow_mode_override: true,
            request_attributes: [
              "xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']",
              "xds.cluster_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']",
              "xds.route_metadata.filter_metadata['aigateway.envoy.io']['aigw_route_name']",
            ],
            processing_mode: {
              request_header_mode: 'SEND',
              request_body_mode: 'NONE',
              response_header_mode: 'SKIP',
              response_body_mode: 'NONE',
            },
            metadata_options: metadata,
          },
        },
        {
          name: 'envoy.filters.http.header_mutation',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation',
            mutations: {
              request_mutations: [
                {
                  append: {
                    append_action: 'ADD_IF_ABSENT',
                    header: {
                      key: 'content-length',
                      value: `%DYNAMIC_METADATA(${AIGW_METADATA_NAMESPACE}:content_length)%`,
                    },
                  },
                },
              ],
            },
          },
        },
        {
          name: 'envoy.filters.http.upstream_codec',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec',
          },
        },
      ],
    },
  };
  return { modelCluster: c };
}

/** A JSON access log of the AI Gateway metadata, for the verification listener only (the
 * measured listeners log nothing). */
export function metadataAccessLog(path: string): Json {
  return {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
      path,
      log_format: {
        json_format: {
          status: '%RESPONSE_CODE%',
          ai_gateway: `%DYNAMIC_METADATA(${AIGW_METADATA_NAMESPACE})%`,
          lm_gate: '%DYNAMIC_METADATA(lm_gate)%',
        },
      },
    },
  };
}
