{{/* Egress rules every Portevoix pod needs: DNS and PostgreSQL; with (dict "root" $ "kafka" true): Kafka too. */}}
{{- define "portevoix.baseEgress" -}}
{{- $v := .root.Values -}}
{{- $np := $v.networkPolicy -}}
- to: [{namespaceSelector: {{ toJson $np.dns.namespaceSelector }}}]
  ports: [{protocol: UDP, port: {{ $np.dns.port }}}, {protocol: TCP, port: {{ $np.dns.port }}}]
{{- if $v.postgres.create }}
- to: [{podSelector: {matchLabels: {cnpg.io/cluster: {{ include "portevoix.pgCluster" .root }}}}}]
  ports: [{protocol: TCP, port: 5432}]
{{- else }}
- to: {{ toJson (required "postgres.external.networkPolicyPeers is required with networkPolicy.enabled" $v.postgres.external.networkPolicyPeers) }}
  ports: [{protocol: TCP, port: {{ $v.postgres.external.port }}}]
{{- end }}
{{- if .kafka }}
{{- if $v.kafka.create }}
- to: [{podSelector: {matchLabels: {strimzi.io/cluster: {{ include "portevoix.kafkaCluster" .root }}, strimzi.io/broker-role: "true"}}}]
  ports: [{protocol: TCP, port: {{ $v.kafka.listenerPort }}}]
{{- else }}
- to: {{ toJson (required "kafka.external.networkPolicyPeers is required with networkPolicy.enabled" $v.kafka.external.networkPolicyPeers) }}
  ports:
    {{- range $port := $v.kafka.external.ports }}
    - {protocol: TCP, port: {{ $port }}}
    {{- end }}
{{- end }}
{{- end }}
{{- end }}
