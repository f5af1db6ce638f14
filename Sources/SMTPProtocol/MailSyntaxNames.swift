// The MailSyntax helpers under the names this module's grammars use, visible in every file of
// the module (each file would otherwise need its own `import MailSyntax`).
import MailSyntax

typealias ASCII = MailSyntax.ASCII
typealias ByteCursor = MailSyntax.ByteCursor
