// The lookup decoders' limits from [lookup]: the one place config becomes LookupLimits.
import LookupProtocol
import MailCore

extension LookupLimits {
    public init(_ c: LookupConfig) {
        self.init(maxKeyLength: c.maxKeyLength, maxRequestLength: c.maxRequestLength)
    }
}
