// Entry point of the master: parse arguments, load the configuration, run.
import Foundation
import Logging
import MailCore
import MailPrivsep

public enum MasterMain {
    public static func run(arguments: [String]) -> Never {
        var configPath = "/etc/postern/postern.toml"
        var i = 1
        while i < arguments.count {
            switch arguments[i] {
            case "-c", "--config": i += 1; if i < arguments.count { configPath = arguments[i] }
            case "-h", "--help":
                print("usage: master [-c /etc/postern/postern.toml]\nStarts the Postern daemon set in the foreground (systemd Type=notify).")
                exit(ExitStatus.ok)
            default: FileHandle.standardError.write("master: unknown argument \(arguments[i])\n".data(using: .utf8)!); exit(ExitStatus.usage)
            }
            i += 1
        }
        if !configPath.hasPrefix("/") { configPath = FileManager.default.currentDirectoryPath + "/" + configPath }
        let config: PosternConfig
        do { config = try PosternConfig.load(path: configPath) } catch {
            FileHandle.standardError.write("master: \(error)\n".data(using: .utf8)!)
            exit(ExitStatus.config)
        }
        PosternLog.bootstrap(process: "master", level: config.logLevel)
        let logger = Logger(label: "master")
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0]
        let master = Master(config: config, binDir: (exe as NSString).deletingLastPathComponent, logger: logger)
        do { try master.run() } catch {
            logger.critical("\(error)")
            exit(ExitStatus.failure)
        }
    }
}
