/// How a rule's destinations share its traffic, for HTTP routes and TCP proxies alike: by their
/// weights, a destination of weight 0 left out; when every weight is 0 or unset, equally.
/// (Validation refuses the all-zero case for `tcp` and `tls` rules, as Istio does; HTTP rules keep
/// meshd's equal split.)
enum WeightedSplit {
    /// The weight of each destination in Envoy's weighted clusters, `nil` for one left out.
    static func weights(_ weights: [Int32?]) -> [UInt32?] {
        let given = weights.map { UInt32(max($0 ?? 0, 0)) }
        if given.allSatisfy({ $0 == 0 }) { return given.map { _ in 1 } }
        return given.map { $0 == 0 ? nil : $0 }
    }
}
