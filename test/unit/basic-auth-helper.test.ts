// test/helpers/basic-auth.ts: the one way tests build Basic credentials, plain RFC 7617 or an
// OAuth client's RFC 6749 §2.3.1 form.
import t from 'tap'
import { basicAuth, clientBasicAuth, formUrlEncode } from '../helpers/basic-auth.ts'

const decoded = (header: string): string => Buffer.from(header.replace(/^Basic /, ''), 'base64').toString('utf8')

t.test('RFC 7617: user:password in UTF-8, nothing escaped', async (t) => {
  t.equal(basicAuth('Aladdin', 'open sesame'), 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==', 'the RFC 7617 example')
  t.equal(decoded(basicAuth('admin', 'pä:ss %2F')), 'admin:pä:ss %2F')
  t.equal(basicAuth('admin', ''), `Basic ${Buffer.from('admin:').toString('base64')}`)
})

t.test('RFC 6749 §2.3.1: id and secret form-urlencoded first', async (t) => {
  t.equal(decoded(clientBasicAuth('mcp-client', 'mcp-client-secret-0123456789')), 'mcp-client:mcp-client-secret-0123456789', 'plain ids are unchanged')
  t.equal(decoded(clientBasicAuth('my client:1', 'a+b c/ä&=~!')), 'my+client%3A1:a%2Bb+c%2F%C3%A4%26%3D%7E%21')
  t.equal(formUrlEncode('*-._ aZ09'), '*-._+aZ09', 'the form serializer\'s unreserved set; space as +')
})
