// The MailSyntax helpers under the names this module uses, visible in every file of the module.
import MailSyntax

typealias ASCII = MailSyntax.ASCII
