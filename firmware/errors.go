package firmware

import "errors"

var (
	// Manifest.
	ErrSignature  = errors.New("firmware: manifest signature does not verify")
	ErrUnknownKey = errors.New("firmware: manifest is not signed by any trusted key")
	ErrManifest   = errors.New("firmware: malformed manifest")
	ErrExpired    = errors.New("firmware: manifest expired")
	ErrRollback   = errors.New("firmware: manifest serial goes back")

	// Image identity.
	ErrTooLarge   = errors.New("firmware: image larger than the limit")
	ErrOverlap    = errors.New("firmware: overlapping write with different content")
	ErrGap        = errors.New("firmware: image has a gap")
	ErrEmpty      = errors.New("firmware: no image data")
	ErrFragmented = errors.New("firmware: image arrives in too many pieces")

	// Transfers.
	ErrNotApproved = errors.New("firmware: image not in the approved manifest")
	ErrNoManifest  = errors.New("firmware: no approved-image manifest")
	ErrNoTransfer  = errors.New("firmware: no image transferred")
	ErrSeveral     = errors.New("firmware: more than one image in transfer")
	ErrTooMany     = errors.New("firmware: too many transfers at once")
	ErrWindowEdge  = errors.New("firmware: write crosses the edge of the image window")
	ErrMasked      = errors.New("firmware: mask write into the image window")
	ErrOpenMode    = errors.New("firmware: file opened for writing without erasing it, or for appending")
	ErrHandle      = errors.New("firmware: unknown file handle")
	ErrRequest     = errors.New("firmware: not a request that carries image data")
)
