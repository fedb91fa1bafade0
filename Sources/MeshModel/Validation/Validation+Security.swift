extension Checker {
    mutating func check(_ policy: PeerAuthentication) {
        labels(policy.selector?.matchLabels, at: root.appending("selector").appending("matchLabels"))
        let portLevel = policy.portLevelMtls ?? [:]
        if !portLevel.isEmpty && (policy.selector?.matchLabels ?? [:]).isEmpty {
            fail(root.appending("portLevelMtls"), "portLevelMtls requires a workload selector")
        }
        for key in portLevel.keys.sorted() {
            guard let number = UInt32(key), number > 0, number <= 65535 else {
                fail(root.appending("portLevelMtls").appending(key), "\"\(key)\" is not a port number")
                continue
            }
        }
    }

    mutating func check(_ policy: AuthorizationPolicy) {
        labels(policy.selector?.matchLabels, at: root.appending("selector").appending("matchLabels"))
        for (index, rule) in (policy.rules ?? []).enumerated() {
            let path = root.appending("rules").appending(index: index)
            for (position, condition) in (rule.when ?? []).enumerated() where condition.key.isEmpty {
                fail(path.appending("when").appending(index: position).appending("key"), "condition key must not be empty")
            }
        }
    }

    mutating func check(_ telemetry: Telemetry) {
        labels(telemetry.selector?.matchLabels, at: root.appending("selector").appending("matchLabels"))
        for (index, tracing) in (telemetry.tracing ?? []).enumerated() {
            percent(tracing.randomSamplingPercentage, at: root.appending("tracing").appending(index: index).appending("randomSamplingPercentage"))
        }
    }
}
